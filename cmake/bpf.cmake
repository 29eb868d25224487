# Builds BPF C sources (bpf/capaudit.bpf.c, the benchmarks' own) into objects and
# bpftool skeletons.
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

# capaudit_bpf_skeleton(TARGET <target> NAME <name> SOURCE <file.bpf.c> OUT <dir>
#                       [DEPENDS <file>...])
# Compiles SOURCE into OUT/<name>.bpf.o and a bpftool skeleton OUT/<name>.skel.h
# (struct <name>_bpf), built by the custom target TARGET. A generated file may
# have its rule in one directory only, so elsewhere vmlinux.h is reached
# through the capaudit_skel target.
function(capaudit_bpf_skeleton)
  cmake_parse_arguments(ARG "" "TARGET;NAME;SOURCE;OUT" "DEPENDS" ${ARGN})
  set(deps ${ARG_SOURCE} ${ARG_DEPENDS})
  if(CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR)
    list(APPEND deps ${CAPAUDIT_BPF_OUT}/vmlinux.h)
  endif()
  file(MAKE_DIRECTORY ${ARG_OUT})
  get_filename_component(src_name ${ARG_SOURCE} NAME)
  add_custom_command(
    OUTPUT ${ARG_OUT}/${ARG_NAME}.bpf.o
    COMMAND ${CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${CAPAUDIT_BPF_ARCH}
            -I${CAPAUDIT_BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf
            -Wall -Wno-unused-function
            -c ${ARG_SOURCE} -o ${ARG_OUT}/${ARG_NAME}.bpf.o
    DEPENDS ${deps}
    COMMENT "Compiling ${src_name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${ARG_OUT}/${ARG_NAME}.skel.h
    COMMAND sh -c "${BPFTOOL} gen skeleton ${ARG_OUT}/${ARG_NAME}.bpf.o name ${ARG_NAME}_bpf > ${ARG_OUT}/${ARG_NAME}.skel.h.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename ${ARG_OUT}/${ARG_NAME}.skel.h.tmp ${ARG_OUT}/${ARG_NAME}.skel.h
    DEPENDS ${ARG_OUT}/${ARG_NAME}.bpf.o
    COMMENT "Generating ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${ARG_TARGET} DEPENDS ${ARG_OUT}/${ARG_NAME}.skel.h)
  if(NOT CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR)
    add_dependencies(${ARG_TARGET} capaudit_skel)
  endif()
endfunction()

capaudit_bpf_skeleton(TARGET capaudit_skel NAME capaudit
                      SOURCE ${CMAKE_SOURCE_DIR}/bpf/capaudit.bpf.c OUT ${CAPAUDIT_BPF_OUT}
                      DEPENDS ${CMAKE_SOURCE_DIR}/bpf/capaudit.h ${CMAKE_SOURCE_DIR}/bpf/capaudit_maps.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/final_verdict.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/capaudit_args.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/capaudit_inspect.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/capaudit_cgroups.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/capaudit_dpath.bpf.h
                              ${CMAKE_SOURCE_DIR}/bpf/capaudit_key.bpf.h)
