# Writes the generated common/version.h from src/common/version.h.in (cmake -P, see CMakeLists.txt).
# Runs at configure time and at every build; configure_file() keeps the file (and its timestamp)
# when the content is unchanged, so only a new commit or a change of dirtiness recompiles its users.
# Input variables: OUTBOX_SOURCE_DIR, OUTBOX_VERSION_IN, OUTBOX_VERSION_OUT, PROJECT_VERSION,
# OUTBOX_GIT_COMMIT (non-empty: used as is instead of asking git).
if(OUTBOX_GIT_COMMIT)
  set(OUTBOX_GIT_DESCRIBE "${OUTBOX_GIT_COMMIT}")
else()
  set(OUTBOX_GIT_DESCRIBE "unknown")
  find_program(OUTBOX_GIT git)
  # .git is a directory in a clone and a file in a worktree; absent in a release tarball.
  if(OUTBOX_GIT AND EXISTS "${OUTBOX_SOURCE_DIR}/.git")
    execute_process(COMMAND "${OUTBOX_GIT}" -C "${OUTBOX_SOURCE_DIR}" describe --always --dirty
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND out)
      set(OUTBOX_GIT_DESCRIBE "${out}")
    endif()
  endif()
endif()
# It ends up in a C++ string literal.
string(REGEX REPLACE "[^A-Za-z0-9._+-]" "_" OUTBOX_GIT_DESCRIBE "${OUTBOX_GIT_DESCRIBE}")
configure_file("${OUTBOX_VERSION_IN}" "${OUTBOX_VERSION_OUT}" @ONLY)
