"""Admin forms that never show a model server's API key: it reads ``***``, and ``***`` sent back keeps it."""

from django import forms

from inference.openai_chat import keep_secrets, mask_secrets


def secret_params_form(model, fields: tuple[str, ...]):
    """A ModelForm class for ``model`` whose JSON ``fields`` show API keys masked and keep them when unchanged."""

    class SecretParamsForm(forms.ModelForm):
        class Meta:
            exclude = ()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            for name in fields:
                if name in self.initial:
                    self.initial[name] = mask_secrets(self.initial[name])

        def _clean_fields(self):
            super()._clean_fields()
            stored = self.instance if self.instance.pk else None
            for name in fields:
                if name in self.cleaned_data and stored is not None:
                    self.cleaned_data[name] = keep_secrets(self.cleaned_data[name], getattr(stored, name))

    SecretParamsForm.Meta.model = model
    return SecretParamsForm
