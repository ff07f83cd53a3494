.PHONY: pytest lint format check-codestyle type ci

# One thread per process: the test suite runs many zoo commands on 2 cores
export OMP_NUM_THREADS ?= 1

pytest:
	python -m pytest

lint:
	ruff check .

format:
	ruff format .

check-codestyle:
	ruff format --check .

type:
	mypy grpo_zoo reward_fns

ci:
	bash .ci/run
