# FAM/E — conventional entry points.  Everything real lives in Meson and scripts/.
#   make          install missing Debian packages, then build (build/fame)
#   make up       build, then bring up the default cluster's FAM
#   make check    build, then run every test suite (also under ASan/UBSan)
#   make bench    print benchmark figures
BUILD     ?= build
CLUSTER   ?= default
STATE_DIR ?= $(or $(XDG_STATE_HOME),$(HOME)/.local/state)/fame/$(CLUSTER)
FAM       ?= $(STATE_DIR)/fam
FAM_SIZE  ?= 1G

.PHONY: all deps build up check bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Until the cluster runtime lands, `up` prepares the default cluster's FAM (kept if valid).
up: build
	@mkdir -p $(STATE_DIR)
	@$(BUILD)/fame fam info $(FAM) > /dev/null 2>&1 || $(BUILD)/fame fam create $(FAM) --size $(FAM_SIZE)
	$(BUILD)/fame fam info $(FAM)

check: build
	scripts/run-tests $(BUILD)

bench: build
	$(BUILD)/fame bench fam

clean:
	rm -rf $(BUILD) build-asan build-asan.*.log
