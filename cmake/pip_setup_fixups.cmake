# Used only by the pip-based setup (scripts/setup.sh passes -DCMAKE_PROJECT_INCLUDE=<this file>),
# so that CMakeLists.txt stays exactly what colcon builds on a ROS install.
#
# The ROS Kilted wheels export `<pkg>__rosidl_generator_py` targets whose include directories
# name paths of the image the wheels were built in ("includes non-existent path
# .../include/python3.11"). At the end of the top-level directory, keep the include directories
# that exist and add this interpreter's Python and NumPy headers.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

function(_hax_conn_fix_generator_py_targets)
  get_directory_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    if(_target MATCHES "__rosidl_generator_py$")
      get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
      set(_kept "")
      if(_dirs)
        foreach(_dir IN LISTS _dirs)
          if(EXISTS "${_dir}")
            list(APPEND _kept "${_dir}")
          endif()
        endforeach()
      endif()
      list(APPEND _kept ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _hax_conn_fix_generator_py_targets)
