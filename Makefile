# ward: one build command (`make`), a sanitizer build (`make SAN=1`), every test (`make check`).
# Sources are found by wildcard: a module is src/<area>/<name>.c + .h, a unit test is
# tests/unit/test_<name>.c, a fuzz target is fuzz/fuzz_<name>.c with seeds in fuzz/corpus/<name>/.

CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
SAN     ?=
BUILD   ?= build$(if $(SAN),-san)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE $(WARN) -Isrc -I$(BUILD)/gen -fvisibility=hidden -pthread
ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS  := -lbpf -lelf -lz -ljson-c -linih -lfuzzy -lyara -lsqlite3 -lcrypto -lmagic \
           -lsystemd -lzstd -lm -pthread

MAIN    := src/cli/main.c
SRCS    := $(filter-out %.bpf.c,$(wildcard src/*/*.c))
LIBSRCS := $(filter-out $(MAIN),$(SRCS))
OBJS    := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIBSRCS))
BPFSRCS := $(wildcard src/*/*.bpf.c)
SKELS   := $(patsubst src/%.bpf.c,$(BUILD)/gen/%.skel.h,$(BPFSRCS))
UNITS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
FUZZ    := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
HELPERS := $(patsubst tests/helpers/%.c,$(BUILD)/helpers/%,$(wildcard tests/helpers/*.c))

.PHONY: all deps check unit blackbox fuzz fuzz-run bench demo install clean deb
all: $(BUILD)/ward $(UNITS) $(HELPERS) $(BENCHES)

# --- eBPF: vmlinux.h from the running kernel's BTF, skeleton generated, never committed ---
$(BUILD)/gen/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/%.bpf.o: src/%.bpf.c src/%.h $(BUILD)/gen/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I$(BUILD)/gen -Isrc -c $< -o $@
$(BUILD)/gen/%.skel.h: $(BUILD)/gen/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# --- C ---
$(BUILD)/obj/%.o: src/%.c $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/libward.a: $(OBJS)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/ward: $(MAIN) $(BUILD)/libward.a
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libward.a $(LDLIBS) -o $@
$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(BUILD)/libward.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) $< $(BUILD)/libward.a $(LDLIBS) -o $@
$(BUILD)/helpers/%: tests/helpers/%.c $(BUILD)/libward.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libward.a $(LDLIBS) -o $@
$(BUILD)/bench/%: bench/%.c $(BUILD)/libward.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libward.a $(LDLIBS) -o $@

# Fuzz targets: libFuzzer + ASan/UBSan, built with clang against the library compiled once
# with coverage instrumentation.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc -I$(BUILD)/gen -pthread \
               -fsanitize=fuzzer-no-link,address,undefined
FUZZOBJS := $(patsubst src/%.c,$(BUILD)/fuzzobj/%.o,$(LIBSRCS))
$(BUILD)/fuzzobj/%.o: src/%.c $(SKELS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/libward-fuzz.a: $(FUZZOBJS)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/libward-fuzz.a
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(BUILD)/libward-fuzz.a $(LDLIBS) -o $@
fuzz: $(FUZZ)
FUZZ_SECONDS ?= 20
fuzz-run: $(FUZZ)
	@for f in $(FUZZ); do n=$${f##*/fuzz_}; mkdir -p fuzz/corpus/$$n $(BUILD)/fuzz-work/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 -print_final_stats=0 \
	      $(BUILD)/fuzz-work/$$n fuzz/corpus/$$n >$(BUILD)/fuzz-work/$$n.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz-work/$$n.log; echo "fuzz: $$n FAILED"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' $(BUILD)/fuzz-work/$$n.log | tail -1; done

# --- what a fresh Debian machine needs (run as root) ---
deps:
	bash scripts/deps.sh

unit: $(UNITS)
	bash tests/run-unit.sh $(BUILD)
blackbox: all
	bash tests/run-blackbox.sh $(BUILD)
# Every test: unit, black-box (real kernel, real files), sanitizer build, brief fuzzing.
check: deps
	bash tests/check.sh

bench: all
	bash bench/run.sh $(BUILD)

demo: deps all
	bash scripts/demo.sh $(BUILD)/ward

PREFIX ?= /usr/local
install: $(BUILD)/ward
	install -D -m 0755 $(BUILD)/ward $(DESTDIR)$(PREFIX)/sbin/ward

# A Debian package of the release build (scripts/mkdeb.sh says what goes where).
deb: $(BUILD)/ward
	bash scripts/mkdeb.sh $(BUILD)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
