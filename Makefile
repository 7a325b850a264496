# Every target goes through .ci/dev.py, which bootstraps .venv with uv on first use.
# `make test ARGS="-k paths -x"` passes ARGS on to pytest.
PYTHON ?= python3

.PHONY: demo demo-phoenix test lint bench bench-report docs clean

demo demo-phoenix test lint bench bench-report docs clean:
	$(PYTHON) .ci/dev.py $@ $(ARGS)
