# The two commands of the README:
#   make devnet   install everything into .venv/ and contracts/node_modules, then start the devnet
#   make test     install what is missing, then ruff, mypy and the whole pytest suite
.PHONY: install devnet test contracts bench

install:
	scripts/install.sh

devnet: install
	.venv/bin/warden devnet up

test:
	scripts/test.sh

# Rebuild the committed ABI + bytecode after editing contracts/src (needs `make install`).
contracts: install
	cd contracts && node build.mjs

bench: install
	.venv/bin/python bench/run_all.py
