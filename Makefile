# Tessera: one build entry point.
#
#   make            build/tessera
#   make run        serve the demo model (built on first use) on http://127.0.0.1:8000/v1
#   make test       every test CI runs: unit (Criterion), sanitizers, CLI, server
#   make deps       install the Debian packages and the Python venv for tests
#   make bench      CPU speed side by side with llama.cpp (see benchmarks/)
#
# Variables: V=1 shows commands; CFLAGS adds to the project flags.

CC  ?= gcc
CXX ?= g++
PYTHON ?= python3
BUILD := build

# llhttp is compiled from Debian's node-llhttp sources, not copied into the tree
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
PROJECT_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g -pthread -isystem $(LLHTTP_INC)
PROJECT_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -g
OPT ?= -O2
DEPFLAGS = -MMD -MP
LIBS := -ljansson -lsentencepiece -luv -lpthread -lm
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(V),1)
Q :=
else
Q := @
endif

# server/ modules other than the command line are library code the tests link too
SRV_C := $(filter-out server/main.c server/cmd_%.c,$(wildcard server/*.c))
LIB_C := $(wildcard engine/*.c) $(wildcard kernels/cpu/*.c) $(wildcard tokenizer/*.c) $(SRV_C)
LIB_CXX := tokenizer/spm.cc
APP_C := server/main.c $(wildcard server/cmd_*.c)
TEST_C := $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(1)/%.o,$(filter %.c,$(2))) $(patsubst %.cc,$(1)/%.o,$(filter %.cc,$(2)))

LIB_OBJ := $(call obj,$(BUILD)/obj,$(LIB_C) $(LIB_CXX))
APP_OBJ := $(call obj,$(BUILD)/obj,$(APP_C))
TEST_OBJ := $(call obj,$(BUILD)/obj,$(TEST_C))
SAN_LIB_OBJ := $(call obj,$(BUILD)/san,$(LIB_C) $(LIB_CXX))
SAN_TEST_OBJ := $(call obj,$(BUILD)/san,$(TEST_C))
SAN_APP_OBJ := $(call obj,$(BUILD)/san,$(APP_C))
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(BUILD)/llhttp/%.o,$(wildcard $(LLHTTP_DIR)/*.c))

DEMO := $(BUILD)/demo-model
VENV := .venv

.PHONY: all run test test-unit test-san test-cli test-server deps bench clean demo
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

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (llhttp)")
	$(Q)$(CC) -O2 -w -I$(LLHTTP_INC) -c $< -o $@

$(BUILD)/tessera: $(LIB_OBJ) $(APP_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

$(BUILD)/test_unit: $(LIB_OBJ) $(TEST_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) -lcriterion $(LDFLAGS)

$(BUILD)/test_unit_san: $(SAN_LIB_OBJ) $(SAN_TEST_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $(SAN_FLAGS) $^ -o $@ $(LIBS) -lcriterion $(LDFLAGS)

$(BUILD)/tessera_san: $(SAN_LIB_OBJ) $(SAN_APP_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $(SAN_FLAGS) $^ -o $@ $(LIBS) $(LDFLAGS)

$(DEMO)/model.safetensors: scripts/make_demo_model.py scripts/data/demo_corpus.txt
	$(Q)$(PYTHON) scripts/make_demo_model.py $(DEMO)

demo: $(DEMO)/model.safetensors

run: $(BUILD)/tessera demo
	@echo "Demo model: random weights (see README): replies are gibberish; the API and the speed are real."
	@echo "Point an OpenAI client at http://127.0.0.1:8000/v1 (model \"demo\"); Ctrl-C stops the server."
	$(BUILD)/tessera serve $(DEMO) --served-model-name demo

test: test-unit test-san test-cli test-server

test-unit: $(BUILD)/test_unit
	$(BUILD)/test_unit --jobs 2

# ASan + UBSan (leak checks included) over the same unit tests, and the server
# tests against a sanitized binary (a leak or error at exit fails them).
test-san: $(BUILD)/test_unit_san $(BUILD)/tessera_san $(VENV)/.ok
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_unit_san --jobs 2
	ASAN_OPTIONS=detect_leaks=1 TESSERA_BIN=$(BUILD)/tessera_san $(VENV)/bin/python -m pytest -q tests/server

$(VENV)/.ok: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

test-cli: $(BUILD)/tessera demo $(VENV)/.ok
	$(VENV)/bin/python -m pytest -q tests/cli

# the HTTP server through the official openai package and raw sockets
test-server: $(BUILD)/tessera $(VENV)/.ok
	$(VENV)/bin/python -m pytest -q tests/server

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
