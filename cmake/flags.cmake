# Warnings and the optional sanitizer build, applied per target.
function(genaug_apply_flags target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
    if(GENAUG_SANITIZE)
      # libstdc++'s checked operator[] and friends: an index one past a
      # vector's size but inside its capacity is caught too (ASan is not).
      target_compile_definitions(${target} PRIVATE _GLIBCXX_ASSERTIONS)
      target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
      target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    endif()
  endif()
endfunction()
