# The C init: static builds, sanitizer and valgrind runs of its tests, benchmark.
# Included by the top-level Makefile (BUILD, VENV, PY come from there).
.PHONY: init test-init-sanitizers test-init-asan test-init-valgrind bench-init

INIT_SRC     := init/podinit.c
INIT_VERSION := 0.1.0
INIT_WARN    := -std=c11 -Wall -Wextra -Werror
# Small and static: drop unwind tables and unused sections, strip.
INIT_SMALL   := -Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
                -fno-unwind-tables -static -s -Wl,--gc-sections -Wl,--build-id=none -Wl,-z,norelro
INIT_CFLAGS  := $(INIT_WARN) -DPODINIT_VERSION='"$(INIT_VERSION)"'
ZIG          := $(VENV)/bin/python -m ziglang

init: $(BUILD)/podinit $(BUILD)/podinit-arm64 $(BUILD)/podinit-asan $(BUILD)/podinit-debug

$(BUILD)/podinit: $(INIT_SRC) init/init.mk
	@mkdir -p $(BUILD)
	musl-gcc $(INIT_CFLAGS) $(INIT_SMALL) -Wl,-z,noseparate-code -o $@ $<

# zig ships musl and clang for every target; it comes from PyPI with the venv.
$(BUILD)/podinit-arm64: $(INIT_SRC) init/init.mk | venv
	@mkdir -p $(BUILD)
	$(ZIG) cc -target aarch64-linux-musl $(INIT_CFLAGS) $(INIT_SMALL) -o $@ $<

$(BUILD)/podinit-asan: $(INIT_SRC) init/init.mk
	@mkdir -p $(BUILD)
	gcc $(INIT_CFLAGS) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
		-fno-sanitize-recover=all -o $@ $<

$(BUILD)/podinit-debug: $(INIT_SRC) init/init.mk
	@mkdir -p $(BUILD)
	gcc $(INIT_CFLAGS) -g -O0 -o $@ $<

# The same suite against the sanitized build and under valgrind; storms are
# smaller there because both are much slower to fork.
test-init-sanitizers: test-init-asan test-init-valgrind

test-init-asan: venv $(BUILD)/podinit-asan
	PODINIT_BIN=$(BUILD)/podinit-asan PODINIT_TEST_SCALE=0.2 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99 \
		$(PY) -m pytest -q tests/init

test-init-valgrind: venv $(BUILD)/podinit-debug
	PODINIT_BIN=$(BUILD)/podinit-debug PODINIT_TEST_SCALE=0.05 \
	PODINIT_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
		$(PY) -m pytest -q tests/init

bench-init: venv $(BUILD)/podinit
	$(PY) bench/init/bench_init.py --init $(BUILD)/podinit
