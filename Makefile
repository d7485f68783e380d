# FAM/E — conventional entry points.  Everything real lives in Meson and scripts/.
#   make          install missing Debian packages, then build (build/fame)
#   make up       build, then bring up the default cluster (make up N=8 for 8 nodes)
#   make check    build, then run every test suite (also under ASan/UBSan)
#   make quick    build, then run the unit and golden suites (under a minute)
#   make bench    print benchmark figures
BUILD     ?= build

.PHONY: all deps build up check quick bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

# The node programs and libfame's unit tests for aarch64 nodes (cross/aarch64-linux-gnu.ini).
$(BUILD)-aarch64/build.ninja: | deps
	meson setup $(BUILD)-aarch64 --cross-file cross/aarch64-linux-gnu.ini -Dnode_only=true

build: deps $(BUILD)/build.ninja $(BUILD)-aarch64/build.ninja
	ninja -C $(BUILD)
	ninja -C $(BUILD)-aarch64

# The main job: the default cluster (4 diskless nodes on one FAM), left running.
up: build
	$(BUILD)/fame up $(if $(N),-n $(N))

check: build
	scripts/run-tests $(BUILD)

quick: build
	meson test -C $(BUILD) --setup quick --print-errorlogs --num-processes 2

bench: build
	$(BUILD)/fame bench fam
	$(BUILD)/fame librarian bench
	$(BUILD)/fame librarian bench --lfs-unlink
	FAME=$(BUILD)/fame bench/bench-librarian.sh
	FAME=$(BUILD)/fame bench/bench-up.sh
	FAME=$(BUILD)/fame bench/bench-lfs.sh
	FAME=$(BUILD)/fame bench/bench-debian.sh
	FAME=$(BUILD)/fame bench/bench-libvirt.sh
	FAME=$(BUILD)/fame bench/bench-arch.sh
	FAME=$(BUILD)/fame bench/bench-check.sh

clean:
	rm -rf $(BUILD) build-asan build-asan.*.log
