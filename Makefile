# Makefile: builds bmbackup and installs it (stripped) with its mount(8) helper, systemd units,
# man pages (bmbackup(1), one per command, bmbackup.toml(5)), bash, zsh and fish completions
# and example configuration; `make install` /
# `make uninstall`, honouring DESTDIR and PREFIX; `make deb` builds a Debian package of the same.
#
#   make install                       # /usr/local/bin/bmbackup, /sbin/mount.bmbackup, ...
#   make install PREFIX=/usr UNITDIR=/lib/systemd/system DESTDIR=/tmp/pkg   # for a package
#   make install BIN=path/to/bmbackup  # install a binary built elsewhere, without cargo
#   make deb                           # target/bmbackup_VERSION_ARCH.deb (dpkg-deb only)
#   make test                          # installs what the tests need (.ci/setup), then runs them

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# mount(8) looks for helpers in /sbin only (and /sbin/fs.d, /sbin/fs), whatever PREFIX is.
SBINDIR ?= /sbin
SYSCONFDIR ?= /etc
# /etc/systemd/system for a local install; packages use /lib/systemd/system.
UNITDIR ?= $(SYSCONFDIR)/systemd/system
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DESTDIR ?=
CARGO ?= cargo
INSTALL ?= install
STRIP ?= strip
RELEASE_BIN := target/release/bmbackup
BIN ?= $(RELEASE_BIN)

UNITS := bmbackup.service bmbackup.timer bmbackup-mount.service bmbackup-console.service
# The units and the helper name the binary by its default path; rewritten for other prefixes.
SUBST := sed -e 's|/usr/local/bin/bmbackup|$(BINDIR)/bmbackup|g'

# Man pages and completions, written by the binary itself from its argument definitions.
DOCS := target/docs

.PHONY: all build install uninstall verify deb test

all: build

build:
	$(CARGO) build --release --locked

# Build only when installing our own release binary: a test or a packager passing BIN= installs
# that file without running cargo.
ifeq ($(BIN),$(RELEASE_BIN))
install: build
endif

install:
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/bmbackup $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
# Stripped: the release profile keeps line tables for profiling (63 MB); an installed binary
# needs none of it.
	$(INSTALL) -m 0755 -s --strip-program=$(STRIP) $(BIN) $(DESTDIR)$(BINDIR)/bmbackup
	rm -rf $(DOCS) && $(BIN) docs $(DOCS)
	$(INSTALL) -m 0644 $(DOCS)/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(DOCS)/man5/bmbackup.toml.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 $(DOCS)/bash/bmbackup $(DESTDIR)$(BASHCOMPDIR)/bmbackup
	$(INSTALL) -m 0644 $(DOCS)/zsh/_bmbackup $(DESTDIR)$(ZSHCOMPDIR)/_bmbackup
	$(INSTALL) -m 0644 $(DOCS)/fish/bmbackup.fish $(DESTDIR)$(FISHCOMPDIR)/bmbackup.fish
	$(SUBST) mount-helpers/mount.bmbackup >$(DESTDIR)$(SBINDIR)/mount.bmbackup.tmp
	chmod 0755 $(DESTDIR)$(SBINDIR)/mount.bmbackup.tmp
	mv -f $(DESTDIR)$(SBINDIR)/mount.bmbackup.tmp $(DESTDIR)$(SBINDIR)/mount.bmbackup
	ln -sfn mount.bmbackup $(DESTDIR)$(SBINDIR)/mount.fuse.bmbackup
	for u in $(UNITS); do \
		$(SUBST) systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
# Only ever the .example: an existing configuration is never overwritten.
	$(INSTALL) -m 0644 examples/bmbackup.toml $(DESTDIR)$(SYSCONFDIR)/bmbackup/bmbackup.toml.example
	@if [ -z "$(DESTDIR)" ]; then \
		echo "Next: bmbackup init /srv/bmstore   # once, on the backup disk or NFS share"; \
		echo "      cp $(SYSCONFDIR)/bmbackup/bmbackup.toml.example $(SYSCONFDIR)/bmbackup/bmbackup.toml  # set store = \"/srv/bmstore\""; \
		echo "      systemctl daemon-reload; systemctl enable --now bmbackup.timer [bmbackup-mount.service]"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bmbackup $(DESTDIR)$(SBINDIR)/mount.bmbackup \
		$(DESTDIR)$(SBINDIR)/mount.fuse.bmbackup \
		$(DESTDIR)$(SYSCONFDIR)/bmbackup/bmbackup.toml.example
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	rm -f $(DESTDIR)$(MANDIR)/man1/bmbackup.1 $(DESTDIR)$(MANDIR)/man1/bmbackup-*.1 \
		$(DESTDIR)$(MANDIR)/man5/bmbackup.toml.5 \
		$(DESTDIR)$(BASHCOMPDIR)/bmbackup $(DESTDIR)$(ZSHCOMPDIR)/_bmbackup \
		$(DESTDIR)$(FISHCOMPDIR)/bmbackup.fish
# The directory stays when it holds the real configuration.
	rmdir $(DESTDIR)$(SYSCONFDIR)/bmbackup 2>/dev/null || true

verify:
	systemd/verify

# The README's test command: what the tests need, installed or built when missing (.ci/setup:
# apt packages, playwright-core, Garage cached in /var/cache/bmbackup-ci), then every test.
test:
	bash .ci/setup
	$(CARGO) test --locked

# A Debian package of `make install PREFIX=/usr` with dpkg-deb alone (no cargo-deb to install):
# binary, mount helper, units in /lib/systemd/system, gzipped man pages, completions, the
# example config as a conffile. `apt-get install ./target/bmbackup_*.deb` installs it.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEBROOT := target/deb/root
DEB := target/bmbackup_$(VERSION)_$(ARCH).deb

ifeq ($(BIN),$(RELEASE_BIN))
deb: build
endif

deb:
	rm -rf $(DEBROOT) && mkdir -p $(DEBROOT)/DEBIAN $(DEBROOT)/usr/share/doc/bmbackup
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEBROOT) PREFIX=/usr \
		UNITDIR=/lib/systemd/system ZSHCOMPDIR=/usr/share/zsh/vendor-completions BIN=$(BIN)
	gzip -9n $(DEBROOT)/usr/share/man/man1/*.1 $(DEBROOT)/usr/share/man/man5/*.5
	$(INSTALL) -m 0644 README.md $(DEBROOT)/usr/share/doc/bmbackup/README.md
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(ARCH)/' \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEBROOT) | cut -f1)/" \
		packaging/debian/control >$(DEBROOT)/DEBIAN/control
	$(INSTALL) -m 0644 packaging/debian/conffiles $(DEBROOT)/DEBIAN/conffiles
	$(INSTALL) -m 0755 packaging/debian/postinst packaging/debian/postrm $(DEBROOT)/DEBIAN/
	dpkg-deb --root-owner-group -Zxz --build $(DEBROOT) $(DEB)
	@echo "built $(DEB)"
