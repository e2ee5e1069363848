# Tessera: one build entry point.
#
#   make            build/tessera
#   make run        serve the demo model (built on first use) on http://127.0.0.1:8000/v1
#   make test       every test CI runs: unit (Criterion), sanitizers, fuzzing, CLI, server, tokenizer, soak
#   make fuzz       every libFuzzer target for FUZZ_TIME seconds each (tests/fuzz/)
#   make deps       install the Debian packages and the Python venv for tests
#   make bench      CPU speed side by side with llama.cpp (see benchmarks/)
#   make emu        build/tessera-emu: the CUDA backend run by the CPU emulator
#   make CUDA=1     build/tessera with the CUDA backend (nvcc, sm_80/89/90)
#
# Variables: V=1 shows commands; CFLAGS adds to the project flags;
# FUZZ_TIME, FUZZ_ONLY (make fuzz).

CC  ?= gcc
CXX ?= g++
PYTHON ?= python3
BUILD := build

# llhttp is compiled from Debian's node-llhttp sources, not copied into the tree
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
PROJECT_CFLAGS = -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g -pthread -isystem $(LLHTTP_INC)
PROJECT_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -g
OPT ?= -O2
DEPFLAGS = -MMD -MP
# MPI (tensor parallelism, engine/comm.c): OpenMPI's flags, asked for when
# first used (after the packages are installed), once
MPI_CFLAGS = $(eval MPI_CFLAGS := $$(patsubst -I%,-isystem %,$$(shell pkg-config --cflags ompi-c 2>/dev/null)))$(MPI_CFLAGS)
MPI_LIBS = $(eval MPI_LIBS := $$(shell pkg-config --libs ompi-c 2>/dev/null))$(MPI_LIBS)
PROJECT_CFLAGS += $(MPI_CFLAGS)
LIBS = -ljansson -lsentencepiece -lpcre2-8 -lutf8proc -luv -lxxhash -lpthread -lm $(MPI_LIBS)
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(V),1)
Q :=
else
Q := @
endif

# CUDA: the toolkit's headers build the emulated backend (make test, make emu);
# nvcc and its libraries only CUDA=1.
CUDA_HOME ?= /usr/local/cuda
CUDA_INC := $(CUDA_HOME)/include
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCHS := 80 89 90
NVCC_FLAGS := -std=c++17 -O3 -lineinfo $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
  -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings
EMU_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror -Wno-unknown-pragmas -g -isystem $(CUDA_INC)
CUDA_CFLAGS := -isystem $(CUDA_INC) -DTESSERA_CUDA

# server/ modules other than the command line are library code the tests link too
SRV_C := $(filter-out server/main.c server/launch.c server/cmd_%.c,$(wildcard server/*.c))
LIB_C := $(wildcard base/*.c) $(wildcard kernels/*.c) $(filter-out engine/backend_cuda%.c,$(wildcard engine/*.c)) $(wildcard kernels/cpu/*.c) \
  $(wildcard tokenizer/*.c) $(wildcard tokenizer/jinja/*.c) $(wildcard engine/grammar/*.c) $(SRV_C)
LIB_CXX := tokenizer/spm.cc
APP_C := server/main.c server/launch.c $(wildcard server/cmd_*.c)
TEST_C := $(wildcard tests/unit/*.c)

# The Debian packages (scripts/deps.sh has the list) are checked before the
# first compile, and installed when missing, so that make, make run and make
# test work on a fresh machine; the stamp is redone when the list changes.
.DEFAULT_GOAL := all
DEPS_OK := $(BUILD)/.deps-ok
$(DEPS_OK): scripts/deps.sh
	@mkdir -p $(BUILD)
	$(Q)scripts/deps.sh
	@touch $@

obj = $(patsubst %.c,$(1)/%.o,$(filter %.c,$(2))) $(patsubst %.cc,$(1)/%.o,$(filter %.cc,$(2)))

LIB_OBJ := $(call obj,$(BUILD)/obj,$(LIB_C) $(LIB_CXX))
APP_OBJ := $(call obj,$(BUILD)/obj,$(APP_C))
TEST_OBJ := $(call obj,$(BUILD)/obj,$(TEST_C))
SAN_LIB_OBJ := $(call obj,$(BUILD)/san,$(LIB_C) $(LIB_CXX))
SAN_TEST_OBJ := $(call obj,$(BUILD)/san,$(TEST_C))
SAN_APP_OBJ := $(call obj,$(BUILD)/san,$(APP_C))
LLHTTP_OBJ := $(addprefix $(BUILD)/llhttp/,api.o http.o llhttp.o)  # named: the sources appear with the packages

# The CUDA backend, its kernels and launch.c (which offers --device cuda),
# built against the emulator (build/emu) or with nvcc (build/cuda).
CU_SRC := $(wildcard kernels/cuda/*.cu)
CUDA_C := engine/backend_cuda.c engine/backend_cuda_fp8.c engine/backend_cuda_graph.c server/launch.c
EMU_OBJ := $(patsubst %.cu,$(BUILD)/emu/%.o,$(CU_SRC)) $(patsubst %.c,$(BUILD)/emu/%.o,$(wildcard kernels/emu/*.c) $(CUDA_C))
EMU_TEST_OBJ := $(patsubst %.c,$(BUILD)/emu/%.o,$(wildcard tests/emu/*.c)) \
  $(patsubst %.cu,$(BUILD)/emu/%.o,$(wildcard tests/emu/*.cu)) $(BUILD)/obj/tests/unit/test_util.o
CUDA_OBJ := $(patsubst %.cu,$(BUILD)/cuda/%.o,$(CU_SRC)) $(patsubst %.c,$(BUILD)/cuda/%.o,$(CUDA_C))
APP_REST_OBJ := $(filter-out $(BUILD)/obj/server/launch.o,$(APP_OBJ))

DEMO := $(BUILD)/demo-model
VENV := .venv

.PHONY: all run test test-unit test-emu test-cuda-build test-cuda test-san test-fuzz test-cli test-server test-tokenizer test-jinja test-grammar test-quant soak deps bench bench-qmatmul \
  clean demo emu fuzz FORCE
all: $(BUILD)/tessera

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $<")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(OPT) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cc | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $<")
	$(Q)$(CXX) $(PROJECT_CXXFLAGS) $(OPT) $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (asan+ubsan)")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.cc | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $< (asan+ubsan)")
	$(Q)$(CXX) $(PROJECT_CXXFLAGS) $(SAN_FLAGS) $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/emu/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (emu)")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(CUDA_CFLAGS) -DTESSERA_EMU $(OPT) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/emu/%.o: %.cu | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $< (emu)")
	$(Q)$(CXX) -x c++ $(EMU_CXXFLAGS) $(OPT) $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/cuda/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (cuda)")
	$(Q)$(CC) $(PROJECT_CFLAGS) $(CUDA_CFLAGS) $(OPT) $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/cuda/%.o: %.cu | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC $<")
	$(Q)$(NVCC) $(NVCC_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (llhttp)")
	$(Q)$(CC) -O2 -w -I$(LLHTTP_INC) -c $< -o $@

# build/tessera is the CPU build, or with CUDA=1 the CUDA one; the variant
# file changes when the choice does, so that switching relinks.
VARIANT := $(if $(CUDA),cuda,cpu)
$(BUILD)/variant: FORCE
	@mkdir -p $(BUILD)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VARIANT)" ] || echo $(VARIANT) > $@

CUDA_LIBS := -L$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lnccl -lcudart
ifeq ($(CUDA),)
$(BUILD)/tessera: $(LIB_OBJ) $(APP_OBJ) $(LLHTTP_OBJ) $(BUILD)/variant
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $(filter %.o,$^) -o $@ $(LIBS) $(LDFLAGS)
else
$(BUILD)/tessera: $(BUILD)/tessera-cuda $(BUILD)/variant
	cp $< $@
endif

$(BUILD)/tessera-cuda: $(LIB_OBJ) $(APP_REST_OBJ) $(CUDA_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(CUDA_LIBS) $(LDFLAGS)

# the emulated kernel and backend tests, natively on a GPU
CUDA_TEST_OBJ := $(patsubst %.c,$(BUILD)/cuda/%.o,tests/emu/test_cuda_kernels.c tests/emu/test_cuda_quant.c \
  tests/emu/test_cuda_sample.c tests/emu/test_backend_cuda_fp8.c \
  tests/emu/test_backend_cuda.c tests/emu/test_golden_cuda.c)
$(CUDA_TEST_OBJ): CFLAGS += -DTESSERA_NATIVE_CUDA
$(BUILD)/test_cuda: $(LIB_OBJ) $(filter-out $(BUILD)/cuda/server/launch.o,$(CUDA_OBJ)) $(CUDA_TEST_OBJ) \
  $(BUILD)/obj/tests/unit/test_util.o $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) -lcriterion $(CUDA_LIBS) $(LDFLAGS)

emu: $(BUILD)/tessera-emu

$(BUILD)/tessera-emu: $(LIB_OBJ) $(APP_REST_OBJ) $(EMU_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

$(BUILD)/test_emu: $(LIB_OBJ) $(filter-out $(BUILD)/emu/server/launch.o,$(EMU_OBJ)) $(EMU_TEST_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) -lcriterion $(LDFLAGS)

# a golden model over the ranks of an MPI job, CPU or emulated CUDA backend
# (tests/tp/golden_ranks.c; run by tests/server/test_tensor_parallel.py)
$(BUILD)/golden-ranks: $(LIB_OBJ) $(filter-out $(BUILD)/emu/server/launch.o,$(EMU_OBJ)) \
  $(BUILD)/emu/tests/tp/golden_ranks.o $(BUILD)/obj/tests/unit/test_util.o $(LLHTTP_OBJ)
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

# Fuzzing: libFuzzer targets under ASan + UBSan, built by clang. A target is
# tests/fuzz/fuzz_<name>.c plus one name:max_len line in FUZZ_TARGETS (max_len:
# the longest input libFuzzer makes); its seeds are tests/fuzz/corpus/<name>/,
# tests/fuzz/<name>.dict is its dictionary when present, and the inputs in
# tests/fuzz/crashes/<name>/ (fixed crashes) are replayed first on every run.
# The library is compiled again with clang, the sanitizers and the fuzzer's
# coverage hooks into build/fuzz/obj and archived, so that a target links
# only the objects it uses. The SIMD kernels and their dispatcher are left out
# (no target reaches them, and clang 14 rejects dispatch.c's
# __builtin_cpu_supports("f16c") and warns of an unused function in avx2.c);
# the scalar ones (ref.c) stay. tests/fuzz/run.sh runs one target.
FUZZ_TARGETS := \
  oai_request:8192 \
  safetensors:8192 \
  gguf:16384 \
  tokenizer:512 \
  tokenizer_json:4096 \
  stop:1024 \
  tool_calls:4096 \
  chat_template:1024 \
  chat_jinja:8192 \
  json_schema:4096 \
  responses:8192 \
  http:8192
FUZZ_NAMES := $(foreach t,$(FUZZ_TARGETS),$(firstword $(subst :, ,$(t))))
FUZZ_CC ?= clang
FUZZ_CXX ?= clang++
FUZZ_SAN := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_BIN := $(addprefix $(BUILD)/fuzz/,$(FUZZ_NAMES))
FUZZ_LIB := $(BUILD)/fuzz/libtessera.a
FUZZ_LIB_OBJ := $(call obj,$(BUILD)/fuzz/obj,$(filter-out kernels/cpu/avx% kernels/cpu/dispatch.c,$(LIB_C)) $(LIB_CXX))
FUZZ_TIME ?= 60
FUZZ_TEST_TIME ?= 15
FUZZ_ONLY ?= $(FUZZ_NAMES)
fuzz_run = for t in $(FUZZ_TARGETS); do n=$${t%%:*}; case " $(2) " in *" $$n "*) \
  tests/fuzz/run.sh $(BUILD)/fuzz $$n $${t\#\#*:} $(1) $(3) || exit 1;; esac; done

$(BUILD)/fuzz/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC   $< (fuzz)")
	$(Q)$(FUZZ_CC) $(PROJECT_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(DEPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/fuzz/obj/%.o: %.cc | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX  $< (fuzz)")
	$(Q)$(FUZZ_CXX) $(PROJECT_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(DEPFLAGS) $(CXXFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_BIN): $(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(FUZZ_CXX) -pthread $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(LIBS) $(LDFLAGS)

# each target for FUZZ_TIME seconds (FUZZ_ONLY="stop tokenizer": some of
# them); what they find stays in build/fuzz/run/<name>/corpus for the next run
fuzz: $(FUZZ_BIN)
	$(Q)$(call fuzz_run,$(FUZZ_TIME),$(FUZZ_ONLY),keep)

# in make test: each target briefly from its seeds (6 x 15 s)
test-fuzz: $(FUZZ_BIN)
	$(Q)$(call fuzz_run,$(FUZZ_TEST_TIME),$(FUZZ_NAMES),fresh)

$(DEMO)/model.safetensors: scripts/make_demo_model.py scripts/data/demo_corpus.txt
	$(Q)$(PYTHON) scripts/make_demo_model.py $(DEMO)

demo: $(DEMO)/model.safetensors

run: $(BUILD)/tessera demo
	@echo "Demo model: random weights (see README): replies are gibberish; the API and the speed are real."
	@echo "Point an OpenAI client at http://127.0.0.1:8000/v1 (model \"demo\"); Ctrl-C stops the server."
	$(BUILD)/tessera serve $(DEMO) --served-model-name demo

test: test-unit test-emu test-san test-fuzz test-cli test-server test-tokenizer test-jinja test-grammar test-quant soak test-cuda-build

# GGUF copies of the golden models and of stories260K, written by the gguf
# package's GGUFWriter (scripts/make_gguf.py), for test_golden.c and test_gguf.c;
# quantized models beside their dequantized twins (scripts/make_quant_gguf.py) for
# test_quant_model.c
GGUF_TEST := $(BUILD)/gguf/.ok
$(GGUF_TEST): scripts/make_gguf.py scripts/make_quant_gguf.py $(wildcard tests/data/golden/*/config.json) $(VENV)/.ok
	$(VENV)/bin/python scripts/make_gguf.py --tests $(BUILD)/gguf
	$(VENV)/bin/python scripts/make_quant_gguf.py $(BUILD)/gguf/quant
	@touch $@

test-unit: $(BUILD)/test_unit $(GGUF_TEST)
	$(BUILD)/test_unit --jobs 2

# every CUDA kernel, emulated, against its CPU reference; the CUDA backend
# emulated end to end
test-emu: $(BUILD)/test_emu $(GGUF_TEST)
	$(BUILD)/test_emu --jobs 2

# the CUDA build (nvcc, every target architecture, warnings as errors) on
# every run, so that it never rots where no GPU is
test-cuda-build: $(BUILD)/tessera-cuda $(BUILD)/bench_cuda
	$(BUILD)/tessera-cuda --version

# on a machine with a GPU: the kernel and backend tests natively, then the
# kernels' achieved bandwidth
test-cuda: $(BUILD)/test_cuda $(BUILD)/bench_cuda
	$(BUILD)/test_cuda --jobs 1
	$(BUILD)/bench_cuda

$(BUILD)/bench_cuda: benchmarks/cuda_kernels.cu $(filter $(BUILD)/cuda/kernels/%,$(CUDA_OBJ))
	@$(if $(Q),echo "  NVCC $<")
	$(Q)$(NVCC) $(NVCC_FLAGS) $^ -o $@ $(CUDA_LIBS)

# ASan + UBSan (leak checks included) over the same unit tests, and the server
# and soak tests against a sanitized binary (a leak or error at exit fails them).
# (tensor-parallel tests run once, in test-server: under mpirun the leak
# checker would report OpenMPI's own allocations)
test-san: $(BUILD)/test_unit_san $(BUILD)/tessera_san $(BUILD)/tessera-emu demo $(VENV)/.grammar-ok $(GGUF_TEST)
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/test_unit_san --jobs 2
	ASAN_OPTIONS=detect_leaks=1 TESSERA_BIN=$(BUILD)/tessera_san $(VENV)/bin/python -m pytest -q tests/server \
	  --ignore tests/server/test_tensor_parallel.py
	ASAN_OPTIONS=detect_leaks=1 TESSERA_BIN=$(BUILD)/tessera_san $(VENV)/bin/python -m pytest -q tests/soak

$(VENV)/.ok: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

test-cli: $(BUILD)/tessera $(BUILD)/tessera-emu demo $(VENV)/.tok-ok $(GGUF_TEST)
	$(VENV)/bin/python -m pytest -q tests/cli

# tokenizer.json against the Hugging Face tokenizers package: the folders of
# scripts/make_tokenizers.py (built once into build/tokenizers, a few minutes)
# over tests/data/tokenizer_mix.txt and llama.cpp's vocabulary tests
$(VENV)/.tok-ok: $(VENV)/.ok tests/tokenizer/requirements.txt
	$(VENV)/bin/pip install -q -r tests/tokenizer/requirements.txt
	touch $@

test-tokenizer: $(BUILD)/tessera $(VENV)/.tok-ok
	$(VENV)/bin/python scripts/make_tokenizers.py $(BUILD)/tokenizers
	$(VENV)/bin/python -m pytest -q tests/tokenizer

# the Jinja chat-template renderer (tokenizer/jinja) against Python's jinja2 as
# transformers configures it: every template of ../shared/chat_templates over
# generated conversations, byte for byte (tests/jinja)
$(BUILD)/jinja-run: $(BUILD)/obj/tests/jinja/jinja_run.o $(LIB_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

$(VENV)/.jinja-ok: $(VENV)/.tok-ok tests/jinja/requirements.txt
	$(VENV)/bin/pip install -q -r tests/jinja/requirements.txt
	touch $@

test-jinja: $(BUILD)/jinja-run $(VENV)/.jinja-ok
	$(VENV)/bin/python -m pytest -q tests/jinja

# constrained decoding (engine/grammar): random schemas of every supported
# keyword, outputs by random walks over real vocabularies, each validated
# with the jsonschema package (tests/grammar)
$(BUILD)/grammar-run: $(BUILD)/obj/tests/grammar/grammar_run.o $(LIB_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

$(VENV)/.grammar-ok: $(VENV)/.tok-ok tests/grammar/requirements.txt
	$(VENV)/bin/pip install -q -r tests/grammar/requirements.txt
	touch $@

test-grammar: $(BUILD)/grammar-run $(VENV)/.grammar-ok
	$(VENV)/bin/python scripts/make_tokenizers.py $(BUILD)/tokenizers llama3 stories260K
	$(VENV)/bin/python -m pytest -q tests/grammar

# ggml's block formats (kernels/quant.c) against the gguf package's
# dequantize and quantize, bit for bit, on random blocks (tests/quant)
$(BUILD)/quant-tool: $(BUILD)/obj/tests/quant/quant_tool.o $(BUILD)/obj/kernels/quant.o
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CC) $^ -o $@ -lm $(LDFLAGS)

test-quant: $(BUILD)/quant-tool $(VENV)/.ok
	$(VENV)/bin/python -m pytest -q tests/quant

# the HTTP server through the official openai package and raw sockets
test-server: $(BUILD)/tessera $(BUILD)/tessera-emu $(BUILD)/golden-ranks demo $(VENV)/.grammar-ok $(GGUF_TEST)
	$(VENV)/bin/python -m pytest -q tests/server

# soak and load, bounded (~15 s): 2,000 requests cut at random points, 1,000
# concurrent streams, 250 slow connections next to normal traffic; -s prints
# what each measured
soak: $(BUILD)/tessera $(VENV)/.ok
	$(VENV)/bin/python -m pytest -q -s tests/soak

deps: $(DEPS_OK)
	$(MAKE) $(VENV)/.ok

bench: $(BUILD)/tessera demo
	$(PYTHON) benchmarks/bench_cpu.py --setup

# the quantized matmul next to the F16 one (benchmarks/bench_qmatmul.c); not in make test
$(BUILD)/bench_qmatmul: $(BUILD)/obj/benchmarks/bench_qmatmul.o $(LIB_OBJ) $(LLHTTP_OBJ)
	@$(if $(Q),echo "  LINK $@")
	$(Q)$(CXX) -pthread $^ -o $@ $(LIBS) $(LDFLAGS)

bench-qmatmul: $(BUILD)/bench_qmatmul
	$(BUILD)/bench_qmatmul

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
