# Optional runtimes beside ONNX Runtime, each its own library (DESIGN.md: a backend is compiled in
# or out by CMake, never by #ifdefs in the core). Included from the top-level CMakeLists.txt after
# slipway_library() and slipway_backend are defined.
#
#   SLIPWAY_LIBTORCH  slipway_backend_libtorch: TorchScript model.pt (Debian 12: libtorch-dev)
#   SLIPWAY_XGBOOST   slipway_backend_xgboost: XGBoost model.json / model.ubj (libxgboost-dev)
#
# XGBoost defaults to ON when its runtime is installed. LibTorch is opt-in (-DSLIPWAY_LIBTORCH=ON):
# Debian 12's libtorch_cpu.so links OpenCV, FFmpeg, GDAL and the rest of Caffe2's dependencies,
# about 220 packages, so linking it puts them all into every slipway process (about 0.4 s more per
# start) and into the runtime image (deploy/runtime-packages.txt, checked against build/slipway by
# tests/deploy), which ships without LibTorch. Instrumented builds (SLIPWAY_SANITIZE,
# SLIPWAY_FUZZ) default both to OFF: the runtimes are uninstrumented shared libraries with OpenMP
# thread pools that ThreadSanitizer cannot see, and process-lifetime allocations LeakSanitizer
# would report. LibTorch 1.13's own headers (ATen/core/List.h) do not compile with clang in C++20
# mode. A status line says what is built and why; an enabled backend whose runtime is missing is a
# configure error.
#
# Sets SLIPWAY_OPTIONAL_BACKENDS to the enabled libraries. Each carries an INTERFACE compile
# definition (SLIPWAY_WITH_LIBTORCH, SLIPWAY_WITH_XGBOOST) so that app/server_app.cc, which links
# them, registers exactly the backends that were built.

set(SLIPWAY_OPTIONAL_BACKENDS)
set(_slipway_instrumented FALSE)
if(SLIPWAY_SANITIZE OR SLIPWAY_FUZZ)
  set(_slipway_instrumented TRUE)
endif()

# ---- LibTorch --------------------------------------------------------------------------------
# Debian's TorchConfig.cmake (through Caffe2Config.cmake, which also finds protobuf, glog and
# gflags). Found inside a function so that the many variables it sets stay there; its imported
# targets (torch, torch_cpu, c10, ...) are visible to the whole directory all the same.
function(_slipway_find_torch out)
  find_package(Torch QUIET CONFIG)
  set(${out} ${Torch_FOUND} PARENT_SCOPE)
endfunction()

option(SLIPWAY_LIBTORCH "Build the LibTorch (TorchScript) backend (opt-in, see above)" OFF)
set(_slipway_why " (-DSLIPWAY_LIBTORCH=ON builds it; it needs libtorch-dev and GCC)")
if(SLIPWAY_LIBTORCH)
  if(NOT TARGET torch)
    _slipway_find_torch(_slipway_torch_found)
    if(NOT _slipway_torch_found)
      message(FATAL_ERROR "SLIPWAY_LIBTORCH=ON but LibTorch was not found "
                          "(install libtorch-dev or set Torch_DIR)")
    endif()
  endif()
  # Imported targets' include directories are SYSTEM includes, so LibTorch's headers do not trip
  # our warnings-as-errors.
  slipway_library(slipway_backend_libtorch
    SOURCES ${S}/backends/libtorch/libtorch_backend.cc DEPS slipway_backend torch)
  target_compile_definitions(slipway_backend_libtorch INTERFACE SLIPWAY_WITH_LIBTORCH=1)
  list(APPEND SLIPWAY_OPTIONAL_BACKENDS slipway_backend_libtorch)
  message(STATUS "LibTorch backend: ON")
else()
  message(STATUS "LibTorch backend: OFF${_slipway_why}")
endif()

# ---- XGBoost ---------------------------------------------------------------------------------
# The headers and library directly: Debian 12's xgboost-config.cmake names a /usr/bin/xgboost
# that the packages do not install, so find_package(xgboost) fails there.
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h)
find_library(XGBOOST_LIBRARY xgboost)
set(_slipway_xgboost_found FALSE)
if(XGBOOST_INCLUDE_DIR AND XGBOOST_LIBRARY)
  set(_slipway_xgboost_found TRUE)
endif()
set(_slipway_why "")
if(NOT DEFINED SLIPWAY_XGBOOST)
  set(_slipway_default OFF)
  if(_slipway_instrumented)
    set(_slipway_why " by default in instrumented builds (-DSLIPWAY_XGBOOST=ON to build it)")
  elseif(_slipway_xgboost_found)
    set(_slipway_default ON)
  else()
    set(_slipway_why ": xgboost/c_api.h or libxgboost not found (install libxgboost-dev)")
  endif()
  option(SLIPWAY_XGBOOST "Build the XGBoost backend" ${_slipway_default})
endif()
if(SLIPWAY_XGBOOST)
  if(NOT _slipway_xgboost_found)
    message(FATAL_ERROR "SLIPWAY_XGBOOST=ON but XGBoost was not found (install libxgboost-dev "
                        "or set XGBOOST_INCLUDE_DIR and XGBOOST_LIBRARY)")
  endif()
  if(NOT TARGET slipway::xgboost)
    add_library(slipway::xgboost SHARED IMPORTED)
    set_target_properties(slipway::xgboost PROPERTIES IMPORTED_LOCATION "${XGBOOST_LIBRARY}")
    target_include_directories(slipway::xgboost SYSTEM INTERFACE "${XGBOOST_INCLUDE_DIR}")
  endif()
  slipway_library(slipway_backend_xgboost
    SOURCES ${S}/backends/xgboost/xgboost_backend.cc DEPS slipway_backend slipway::xgboost)
  target_compile_definitions(slipway_backend_xgboost INTERFACE SLIPWAY_WITH_XGBOOST=1)
  list(APPEND SLIPWAY_OPTIONAL_BACKENDS slipway_backend_xgboost)
  message(STATUS "XGBoost backend: ON (${XGBOOST_LIBRARY})")
else()
  message(STATUS "XGBoost backend: OFF${_slipway_why}")
endif()
