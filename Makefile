# Makefile: packaging shortcuts. Building and testing are plain cargo (see README.md).
#
#   make man        target/man/asycamore.8, generated from the clap definition (xtask)
#   make packages   the man page, the release binary, then target/debian/*.deb (cargo-deb)
#                   and target/generate-rpm/*.rpm (cargo-generate-rpm)
#
# cargo-deb and cargo-generate-rpm are not dependencies of the build: install them with
# `cargo install --locked cargo-deb cargo-generate-rpm`.

CARGO ?= cargo

.PHONY: man packages deb rpm release

man:
	$(CARGO) run -p xtask -- man target/man

release:
	$(CARGO) build --release

deb: man release
	$(CARGO) deb --no-build

rpm: man release
	$(CARGO) generate-rpm

packages: deb rpm
