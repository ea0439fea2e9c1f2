# Makefile — builds Bakery's services and fronts every script: run, test, images, stack, k8s.
#
#   make            build/reception, build/baker (and build/libbakery.a), the tracing SDK alone
#                   (build/libotel.a) and its example (build/examples/hello_trace)
#   make sdk        the tracing SDK alone and its example
#   make SAN=1      the same with ASan+UBSan, under build/san/
#   make run        local Redis, RabbitMQ and both services (reception on :8000)
#   make test       everything CI runs (see README)

CC      ?= cc
PKGS    := hiredis librabbitmq libcurl jansson zlib
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
           -Icommon $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lcivetweb -lpthread -lm
BUILD   ?= build

ifeq ($(SAN),1)
BUILD   := build/san
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC    := $(wildcard common/*.c common/otel/*.c)
RECEPTION_SRC := $(wildcard reception/*.c)
BAKER_SRC     := $(wildcard baker/*.c)
UNIT_SRC      := $(wildcard tests/unit/test_*.c)

COMMON_OBJ    := $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
RECEPTION_OBJ := $(RECEPTION_SRC:%.c=$(BUILD)/obj/%.o)
BAKER_OBJ     := $(BAKER_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN      := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean unit run test test-unit test-integration format check-format \
        images push up down e2e loadtest validate bench tools deps cluster-up cluster-down \
        test-cluster fuzz trace sdk bench-sdk
all: $(BUILD)/reception $(BUILD)/baker $(BUILD)/ceiling sdk

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libbakery.a: $(COMMON_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/reception: $(RECEPTION_OBJ) $(BUILD)/libbakery.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/baker: $(BAKER_OBJ) $(BUILD)/libbakery.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make bench's ceiling: the orders/s Redis and RabbitMQ take without HTTP (bench/ceiling.c).
$(BUILD)/ceiling: bench/ceiling.c $(BUILD)/libbakery.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The tracing SDK alone: common/otel/ compiled with only its own directory on the include path
# (so it can include nothing of Bakery), a static library any C program links with
# -lcurl -lz -lpthread; examples/ link against it and nothing else.
SDK_SRC    := $(wildcard common/otel/*.c)
SDK_OBJ    := $(SDK_SRC:common/otel/%.c=$(BUILD)/sdk/obj/%.o)
SDK_CFLAGS := $(filter-out -Icommon,$(CFLAGS)) -Icommon/otel
SDK_LDLIBS := $(shell pkg-config --libs libcurl zlib) -lpthread

sdk: $(BUILD)/libotel.a $(BUILD)/examples/hello_trace

$(BUILD)/sdk/obj/%.o: common/otel/%.c
	@mkdir -p $(dir $@)
	$(CC) $(SDK_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libotel.a: $(SDK_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/examples/%: examples/%.c $(BUILD)/libotel.a
	@mkdir -p $(dir $@)
	$(CC) $(SDK_CFLAGS) $(LDFLAGS) -o $@ $^ $(SDK_LDLIBS)

# make bench-sdk's driver: one order's spans as reception makes them, against libotel.a alone.
$(BUILD)/bench/sdk_cost: bench/sdk_cost.c $(BUILD)/libotel.a
	@mkdir -p $(dir $@)
	$(CC) $(SDK_CFLAGS) $(LDFLAGS) -o $@ $^ $(SDK_LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbakery.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test_bake links the bake it tests through bake.h (baker/ is not in libbakery.a).
$(BUILD)/tests/test_bake: tests/unit/test_bake.c $(BUILD)/obj/baker/bake.o $(BUILD)/libbakery.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit test binaries (no servers).
unit: $(UNIT_BIN)

# The span emitter tests/tracing drives against a real Collector and Jaeger.
$(BUILD)/tests/tracing/emit: tests/tracing/emit.c $(BUILD)/libbakery.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD)/obj $(BUILD)/sdk -name '*.d' 2>/dev/null)

deps:
	scripts/deps.sh

tools:
	scripts/tools.sh all

# deps first, then a fresh make: the flags come from pkg-config, which needs the -dev packages.
run: deps
	$(MAKE) all
	scripts/run.sh

# The one test command: unit (plain and sanitized), integration, tracing, k8s, e2e.
test:
	scripts/test.sh

format:
	clang-format -i $(COMMON_SRC) $(wildcard common/*.h common/otel/*.h reception/*.[ch] baker/*.[ch] tests/unit/*.[ch] bench/*.c examples/*.c)

check-format:
	clang-format --dry-run -Werror $(COMMON_SRC) $(wildcard common/*.h common/otel/*.h reception/*.[ch] baker/*.[ch] tests/unit/*.[ch] bench/*.c examples/*.c)

clean:
	rm -rf build

# libFuzzer targets fuzz/*_fuzz.c with ASan+UBSan, FUZZ_SECONDS each (a crash fails).
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# Containers: images from Dockerfiles/, the Compose stack, its end-to-end test.
images:
	scripts/images.sh

# The images, pushed as $(REGISTRY)/bakery/<svc>:<appVersion>, the chart's default reference.
REGISTRY ?= localhost:5000
push:
	scripts/images.sh --push "$(REGISTRY)"

up:
	scripts/up.sh

down:
	scripts/down.sh

e2e:
	/usr/bin/python3 -m pytest -v tests/e2e

# k6 load test against a running stack (LOADTEST_PROFILE=smoke|full, BASE_URL).
loadtest:
	scripts/loadtest.sh

# One order's journey (its traces joined through their links) from Jaeger's query API, drawn in
# the terminal: make trace KEY=<orderKey>, make trace <orderKey>, or make trace (the latest
# order). JAEGER_URL and RECEPTION_URL aim it elsewhere.
ifeq (trace,$(firstword $(MAKECMDGOALS)))
TRACE_ARGS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
ifneq ($(TRACE_ARGS),)
$(eval $(TRACE_ARGS):;@:)
endif
endif
trace:
	@/usr/bin/python3 scripts/trace.py $(or $(KEY),$(TRACE_ARGS))

# Helm lint, rendered chart and k8s/ against the Kubernetes schemas, the Tiltfile under Tilt.
validate:
	/usr/bin/python3 -m pytest -v tests/k8s

# The SDK's instructions per order and per span under callgrind, on the calling and the export
# thread (bench/sdk_cost.sh; targets: 6,000 and 1,000 per order).
bench-sdk: $(BUILD)/bench/sdk_cost
	bench/sdk_cost.sh $(BUILD)/bench/sdk_cost

# reception against the ceiling, keep-alive and Connection: close, tracing on and off; then the
# ceiling and reception with the quorum queue on three nodes against the classic one (README).
bench:
	scripts/bench.sh

# A real single-node Kubernetes on this machine (scripts/cluster.sh), and the flows the
# README's Kubernetes section promises, run on it: helm, tilt, k6, chaos (tests/cluster).
cluster-up:
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

test-cluster:
	scripts/test-cluster.sh
