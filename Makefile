# Tessera: one build entry point.
#
#   make            build/tessera
#   make run        generate text with the demo model (built on first use)
#   make test       every test CI runs: unit (Criterion), sanitizers, CLI
#   make deps       install the Debian packages and the Python venv for tests
#   make bench      CPU speed side by side with llama.cpp (see benchmarks/)
#
# Variables: V=1 shows commands; CFLAGS adds to the project flags.

CC  ?= gcc
CXX ?= g++
PYTHON ?= python3
BUILD := build

PROJECT_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g -pthread
PROJECT_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -g
OPT ?= -O2
DEPFLAGS = -MMD -MP
LIBS := -ljansson -lsentencepiece -lpthread -lm
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_C := $(wildcard engine/*.c) $(wildcard kernels/cpu/*.c) $(wildcard tokenizer/*.c)
LIB_CXX := tokenizer/spm.cc
APP_C := $(wildcard server/*.c)
TEST_C := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(1)/%.o,$(filter %.c,$(2))) $(patsubst %.cc,$(1)/%.o,$(filter %.cc,$(2)))

LIB_OBJ := $(call obj,$(BUILD)/obj,$(LIB_C) $(LIB_CXX))
APP_OBJ := $(call obj,$(BUILD)/obj,$(APP_C))
TEST_OBJ := $(call obj,$(BUILD)/obj,$(TEST_C))
SAN_LIB_OBJ := $(call obj,$(BUILD)/san,$(LIB_C) $(LIB_CXX))
SAN_TEST_OBJ := $(call obj,$(BUILD)/san,$(TEST_C))

DEMO := $(BUILD)/demo-model
VENV := .venv

.PHONY: all run test test-unit test-san test-cli deps bench clean demo
all: $(BUILD)/tessera

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $<")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(OPT) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $<")
	$(Q)$(CXX) $(PROJECT_CXXFLAGS) $(OPT) $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (asan+ubsan)")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $< (asan+ubsan)")
	$(Q)$(CXX) $(PROJECT_CXXFLAGS) $(SAN_FLAGS) $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/tessera: $(LIB_OBJ) $(APP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

$(BUILD)/test_unit: $(LIB_OBJ) $(TEST_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) -lcriterion $(LDFLAGS)

$(BUILD)/test_unit_san: $(SAN_LIB_OBJ) $(SAN_TEST_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $(SAN_FLAGS) $^ -o $@ $(LIBS) -lcriterion $(LDFLAGS)

$(DEMO)/model.safetensors: scripts/make_demo_model.py scripts/data/demo_corpus.txt
	$(Q)$(PYTHON) scripts/make_demo_model.py $(DEMO)

demo: $(DEMO)/model.safetensors

run: $(BUILD)/tessera demo
	@echo "Demo model: random weights (see README): the text is gibberish; the speed is real."
	$(BUILD)/tessera generate $(DEMO) -p "Once upon a time" -n 64 --seed 1

test: test-unit test-san test-cli

test-unit: $(BUILD)/test_unit
	$(BUILD)/test_unit --jobs 2

# ASan + UBSan (leak checks included) over the same unit tests.
test-san: $(BUILD)/test_unit_san
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_unit_san --jobs 2

$(VENV)/.ok:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q pytest
	touch $@

test-cli: $(BUILD)/tessera demo $(VENV)/.ok
	$(VENV)/bin/python -m pytest -q tests/cli

deps:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q build-essential pkg-config \
	  libjansson-dev libsentencepiece-dev sentencepiece libcriterion-dev libuv1-dev \
	  node-llhttp libopenmpi-dev openmpi-bin python3 python3-venv
	$(MAKE) $(VENV)/.ok

bench: $(BUILD)/tessera demo
	$(PYTHON) benchmarks/bench_cpu.py --setup

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
