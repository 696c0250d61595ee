# Stratus: the two commands of the README, and the helpers behind them.
#
#   make aio          set up this machine, create a lab host, roll the cloud out
#                     onto it, run the smoke journey, write /etc/openstack/clouds.yaml
#   make test         the whole test suite (what CI runs)
#
#   make test-fast    the suite without the slow lab tests (-m "not lab")
#   make lint         ruff and ansible-lint
#   make aio-destroy  remove the all-in-one lab host
#   make benchmark    print the identity, image, object storage and network benchmark tables

VENV        ?= $(CURDIR)/.venv
BIN         := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: bootstrap aio aio-destroy test test-fast lint benchmark tempest

bootstrap:
	@scripts/bootstrap.sh

aio: bootstrap
	$(BIN)/ansible-playbook -i inventories/aio playbooks/aio.yml

aio-destroy: bootstrap
	$(BIN)/ansible-playbook -i inventories/aio playbooks/lab-destroy.yml

lint: bootstrap
	$(BIN)/ruff check services tests benchmarks plugins scripts
	$(BIN)/ruff format --check services tests benchmarks plugins scripts

# Three workers on two cores: the Molecule scenarios and lab host tests,
# which wait mostly on the lab hosts' apt and systemd; the emulated guests
# and Tempest; everything else (tests/conftest.py makes the three groups).
# The suite keeps about one core busy with two workers.
test: lint
	$(BIN)/pytest -n 3 $(PYTEST_ARGS)

test-fast: lint
	$(BIN)/pytest -m "not lab" $(PYTEST_ARGS)

benchmark: bootstrap
	$(BIN)/python benchmarks/identity.py
	$(BIN)/python benchmarks/image.py
# object_storage.py needs the cloud of `make aio` (Swift on aio1, reached over ssh).
	$(BIN)/python benchmarks/object_storage.py
# network.py's agent parts need root (simulated hosts); without it they are skipped.
	$(BIN)/python benchmarks/network.py
	$(BIN)/python benchmarks/compute.py

tempest: bootstrap
	scripts/tempest.sh
