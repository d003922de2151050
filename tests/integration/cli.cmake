# integration tests of the vecscan CLI: bash scripts (tests/integration/cli_*.sh) driving a real
# vecscand on loopback (a port picked by the kernel). Each prints SKIP and exits 77 when a
# prerequisite (python3, the MNIST set) is missing.
if(TARGET vecscan AND TARGET vecscand)
  find_program(VS_BASH bash REQUIRED)
  file(GLOB vs_cli_sh ${CMAKE_CURRENT_LIST_DIR}/cli_*.sh)
  foreach(sh ${vs_cli_sh})
    get_filename_component(name ${sh} NAME_WE)
    if(name STREQUAL "cli_common")
      continue()
    endif()
    add_test(NAME ${name} COMMAND ${VS_BASH} ${sh})
    set(env "VECSCAN=$<TARGET_FILE:vecscan>" "VECSCAND=$<TARGET_FILE:vecscand>")
    if(VS_DEFAULT_DATA_DIR)
      list(APPEND env "VECSCAN_DATA_DIR=${VS_DEFAULT_DATA_DIR}")
    endif()
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 ENVIRONMENT "${env}"
                         LABELS integration)
  endforeach()
endif()
