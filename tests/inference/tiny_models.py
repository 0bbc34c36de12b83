"""Tiny randomly initialised models built offline for the inference tests.

Nothing here touches the network: the configs, tokenizers and processors are
made in code and saved with ``save_pretrained`` so that the backends load them
through exactly the code path a real model folder takes.

* ``build_tiny_vlm(path)``: a Llava (2-layer CLIP vision tower, image 32,
  patch 8, hidden 32; 2-layer Llama text model) with a word-level tokenizer that
  knows ``<image>`` and a ``LlavaProcessor`` around the pillow CLIP image
  processor (torchvision is not installed here).
* ``build_tiny_causal_lm(path)``: a 2-layer Llama with a word-level tokenizer.

The weights are random, so the generated text is garbage: that is the point,
the backends must cope with it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Words the tiny models can emit. Includes JSON punctuation and a few words the
# parsers and policies look for, so random output exercises them.
WORDS = (
    "{ } [ ] : , \" summary threat_level objects low medium high critical "
    "a the person people car dog bag door window street parking lot yard "
    "is are walking running standing lying fell fall fire smoke knife gun fight "
    "nothing unusual normal scene camera image frame shows one two empty night day "
    "severity actions reasons record notify alert_now escalate user assistant system "
    "describe answer json with only and in on of to at no yes ok"
).split()

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }} : "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }} {% endif %}"
    "{% endfor %}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)


def _word_tokenizer(extra_special: list[str] | None = None, chat_template: str | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    extra_special = list(extra_special or [])
    vocab: dict[str, int] = {}
    for tok in SPECIAL + extra_special + WORDS:
        if tok not in vocab:
            vocab[tok] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        padding_side="left",
        additional_special_tokens=extra_special or None,
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def _llama_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )


def build_tiny_vlm(path, *, chat_template: bool = True, seed: int = 0) -> Path:
    """Save a tiny random Llava + processor in ``path`` and return the path."""
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    template = CHAT_TEMPLATE if chat_template else None
    tokenizer = _word_tokenizer(["<image>"])
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_llama_config(tokenizer),
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_causal_lm(path, *, chat_template: bool = False, seed: int = 0) -> Path:
    """Save a tiny random Llama + word-level tokenizer in ``path`` and return the path."""
    import torch
    from transformers import LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _word_tokenizer(chat_template=CHAT_TEMPLATE if chat_template else None)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer)).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_clip(path, *, seed: int = 0, image_size: int = 32) -> Path:
    """Save a tiny random CLIP (``CLIPModel``), its ``CLIPTokenizer`` and the pillow CLIP image
    processor in ``path``, the files a real CLIP folder has, and return the path.

    The tokenizer is a real byte-level BPE ``CLIPTokenizer`` whose vocabulary is the 256 byte
    symbols (each also with the end-of-word suffix) and no merges: every word is spelt out
    character by character, so different prompts give different token sequences. Text and
    vision towers: 2 layers, hidden 32; image 32, patch 8; projection 16.
    """
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(token, len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)

    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    image_processor.save_pretrained(path)
    return path
