# Builds bpf/capaudit.bpf.c into an object and a bpftool skeleton.
# vmlinux.h is generated from the build machine's BTF: CO-RE relocations make
# the object independent of the kernel it was built against (see
# docs/building.md). CAPAUDIT_VMLINUX_BTF points at another BTF file.

find_program(CLANG clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
set(CAPAUDIT_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "BTF to generate vmlinux.h from")

set(CAPAUDIT_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${CAPAUDIT_BPF_OUT})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(CAPAUDIT_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(CAPAUDIT_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "capaudit: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

add_custom_command(
  OUTPUT ${CAPAUDIT_BPF_OUT}/vmlinux.h
  COMMAND sh -c "${BPFTOOL} btf dump file ${CAPAUDIT_VMLINUX_BTF} format c > ${CAPAUDIT_BPF_OUT}/vmlinux.h.tmp"
  COMMAND ${CMAKE_COMMAND} -E rename ${CAPAUDIT_BPF_OUT}/vmlinux.h.tmp ${CAPAUDIT_BPF_OUT}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${CAPAUDIT_VMLINUX_BTF}"
  VERBATIM)

add_custom_command(
  OUTPUT ${CAPAUDIT_BPF_OUT}/capaudit.bpf.o
  COMMAND ${CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${CAPAUDIT_BPF_ARCH}
          -I${CAPAUDIT_BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf
          -Wall -Wno-unused-function
          -c ${CMAKE_SOURCE_DIR}/bpf/capaudit.bpf.c -o ${CAPAUDIT_BPF_OUT}/capaudit.bpf.o
  DEPENDS ${CMAKE_SOURCE_DIR}/bpf/capaudit.bpf.c ${CMAKE_SOURCE_DIR}/bpf/capaudit.h
          ${CAPAUDIT_BPF_OUT}/vmlinux.h
  COMMENT "Compiling capaudit.bpf.c"
  VERBATIM)

add_custom_command(
  OUTPUT ${CAPAUDIT_BPF_OUT}/capaudit.skel.h
  COMMAND sh -c "${BPFTOOL} gen skeleton ${CAPAUDIT_BPF_OUT}/capaudit.bpf.o name capaudit_bpf > ${CAPAUDIT_BPF_OUT}/capaudit.skel.h.tmp"
  COMMAND ${CMAKE_COMMAND} -E rename ${CAPAUDIT_BPF_OUT}/capaudit.skel.h.tmp ${CAPAUDIT_BPF_OUT}/capaudit.skel.h
  DEPENDS ${CAPAUDIT_BPF_OUT}/capaudit.bpf.o
  COMMENT "Generating capaudit.skel.h"
  VERBATIM)

add_custom_target(capaudit_skel DEPENDS ${CAPAUDIT_BPF_OUT}/capaudit.skel.h)
