# make run   : fresh machine -> the whole system running with a demo camera (login printed)
# make test  : fresh machine -> the full suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

MO     := locale/ko/LC_MESSAGES/django.mo
# Debian packages, installed when missing (as root, else a hint): gettext compiles the translations;
# the browser tests drive Debian's chromium through Playwright (never `playwright install`), with a
# Korean font for the Korean pages' screenshots; the fault tests serve real streams with Debian's ffmpeg.
apt = if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1); \
	else echo "Please install $(1): apt-get install $(1)"; fi

.PHONY: install run test bench fuzz clean system-deps test-deps

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

system-deps:
	@command -v msgfmt >/dev/null 2>&1 || { $(call apt,gettext); }

test-deps:
	@test -x /usr/bin/chromium || { $(call apt,chromium); }
	@command -v ffmpeg >/dev/null 2>&1 || { $(call apt,ffmpeg); }
	@test -d /usr/share/fonts/truetype/nanum || { $(call apt,fonts-nanum); }

$(MO): locale/ko/LC_MESSAGES/django.po
	@if command -v msgfmt >/dev/null 2>&1; then msgfmt --check -o $@ $<; else echo "msgfmt missing: keeping $@"; fi

install: $(STAMP) system-deps $(MO)

run: install
	$(PY) manage.py runsystem

test: install test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The long API fuzzing run (tests/test_fuzz_api.py): 60 examples per operation, role and mode, shrunk on failure.
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-60} FUZZ_SHRINK=1 $(PY) -m pytest -p no:cacheprovider tests/test_fuzz_api.py tests/cameras/test_ws_fuzz.py $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache
