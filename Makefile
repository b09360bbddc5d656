# Makefile: builds bmbackup and installs it with its mount(8) helper, systemd units and example
# configuration; `make install` / `make uninstall`, honouring DESTDIR and PREFIX.
#
#   make install                       # /usr/local/bin/bmbackup, /sbin/mount.bmbackup, ...
#   make install PREFIX=/usr UNITDIR=/lib/systemd/system DESTDIR=/tmp/pkg   # for a package
#   make install BIN=path/to/bmbackup  # install a binary built elsewhere, without cargo

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
# mount(8) looks for helpers in /sbin only (and /sbin/fs.d, /sbin/fs), whatever PREFIX is.
SBINDIR ?= /sbin
SYSCONFDIR ?= /etc
# /etc/systemd/system for a local install; packages use /lib/systemd/system.
UNITDIR ?= $(SYSCONFDIR)/systemd/system
DESTDIR ?=
CARGO ?= cargo
INSTALL ?= install
RELEASE_BIN := target/release/bmbackup
BIN ?= $(RELEASE_BIN)

UNITS := bmbackup.service bmbackup.timer bmbackup-mount.service
# The units and the helper name the binary by its default path; rewritten for other prefixes.
SUBST := sed -e 's|/usr/local/bin/bmbackup|$(BINDIR)/bmbackup|g'

.PHONY: all build install uninstall verify

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
		$(DESTDIR)$(SYSCONFDIR)/bmbackup
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/bmbackup
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
		echo "Next: systemctl daemon-reload; cp $(SYSCONFDIR)/bmbackup/bmbackup.toml.example $(SYSCONFDIR)/bmbackup/bmbackup.toml;"; \
		echo "      systemctl enable --now bmbackup.timer [bmbackup-mount.service]"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/bmbackup $(DESTDIR)$(SBINDIR)/mount.bmbackup \
		$(DESTDIR)$(SBINDIR)/mount.fuse.bmbackup \
		$(DESTDIR)$(SYSCONFDIR)/bmbackup/bmbackup.toml.example
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
# The directory stays when it holds the real configuration.
	rmdir $(DESTDIR)$(SYSCONFDIR)/bmbackup 2>/dev/null || true

verify:
	systemd/verify
