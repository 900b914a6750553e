# SPDX-License-Identifier: MIT
# Entry points. `make test` is what CI runs (.ci/run); `make demo` is the main job.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

export CONTAINERS_CONF := $(CURDIR)/containers/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# Molecule and testinfra must not wait on a terminal that CI does not have.
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0

PYTEST := .venv/bin/pytest
SCENARIOS ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))

.PHONY: test unit lint system molecule images package collection release bootstrap demo demo-clean \
	bench clean

## Everything CI runs: set-up, lint, unit, root/system tests, every molecule scenario.
test: bootstrap images release lint
	$(PYTEST) tests -q
	scripts/run-molecule.sh $(SCENARIOS)

## Fast: unit tests only, no containers and no root needed.
unit: bootstrap
	$(PYTEST) tests -q -m "not root and not container"

## Root and container tests outside molecule (launcher, faults, packer).
system: bootstrap images release
	$(PYTEST) tests -q -m "root or container"

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/yamllint -s .
	.venv/bin/ansible-lint
	@# The launcher must build warning-free with the hardening flags.
	$(MAKE) -s -B -C files/launcher OUT=$(CURDIR)/.cache/sendmail-shim-lint

molecule: bootstrap images release
	scripts/run-molecule.sh $(SCENARIOS)

images: bootstrap
	scripts/build-images.sh

## dist/sendmail-shim_<version>_<arch>.deb, built in a Debian 11 container; skipped when current. Needs
## podman (and debootstrap, once, for the base image), not the harness. ARCH=arm64 cross-compiles;
## RELEASE=1 builds the release version (__version__) instead of the commit's development version.
## Only ARCH and RELEASE given on the command line count: an ARCH in the environment may mean another thing.
given = $(if $(filter command line,$(origin $(1))),$(2))
package:
	scripts/build-package.sh $(strip $(call given,ARCH,--arch $(ARCH)) $(call given,RELEASE,--release))

## dist/mailshim-sendmail_shim-<version>.tar.gz, the Ansible collection (collection/README.md); RELEASE=1
## as for the package.
collection: bootstrap
	.venv/bin/python scripts/build-collection.py $(call given,RELEASE,--release)

## dist/release/: both packages with their .buildinfo, the collection, a signed apt repository, the key
## and signed SHA256SUMS (docs/release.md). RELEASE_GNUPGHOME and RELEASE_KEY name the signing key; without
## them a throwaway key signs, which a RELEASE=1 build refuses.
release: bootstrap
	$(MAKE) package $(call given,RELEASE,RELEASE=1)
	$(MAKE) package ARCH=arm64 $(call given,RELEASE,RELEASE=1)
	$(MAKE) collection $(call given,RELEASE,RELEASE=1)
	version=$$(scripts/version.py $(call given,RELEASE,--release)) && \
	semver=$$(scripts/version.py --semver $(call given,RELEASE,--release)) && \
	scripts/release.sh dist/release dist/sendmail-shim_$${version}_{amd64,arm64}.{deb,buildinfo} \
		dist/mailshim-sendmail_shim-$$semver.tar.gz

bootstrap:
	scripts/bootstrap.sh

## Main job: a three-host demo fleet (Debian 11, 12, 13) converged and shown working.
demo: bootstrap images package
	scripts/demo.sh up

demo-clean:
	scripts/demo.sh down

bench: bootstrap images package
	scripts/bench.sh

clean: demo-clean
	rm -rf .venv .cache dist
	@# Bootstrap's qemu-aarch64 registration is host-wide kernel state: Debian's comes back.
	[ "$$(id -u)" -ne 0 ] || scripts/binfmt-arm64.sh restore
