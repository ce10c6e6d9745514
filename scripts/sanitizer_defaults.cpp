// Linked into every executable of the sanitizer builds (scripts/sanitizers.sh
// passes the object in CMAKE_EXE_LINKER_FLAGS). The daemon starts the
// executors with an environment of PATH alone, and the dbus fixture
// starts the daemon with a fixed environment, so ASAN_OPTIONS and friends
// set by the script would never reach them: the options are compiled in.
// log_path sends every report of every process (daemon, executors, tests) to
// L4M_SAN_LOG_DIR/KIND.PID, where the script looks after the run, because a
// report from an executor or from a daemon stopped by the fixture changes no
// test's exit status. Options in the environment still override these.
#if !defined(L4M_SAN_LOG_DIR) || !defined(L4M_TSAN_SUPPRESSIONS)
#error "compile with -DL4M_SAN_LOG_DIR=\"/dir\" -DL4M_TSAN_SUPPRESSIONS=\"/file\""
#endif

extern "C" {
const char* __asan_default_options() {
    return "halt_on_error=1:detect_leaks=1:abort_on_error=0:log_path=" L4M_SAN_LOG_DIR "/asan";
}
const char* __lsan_default_options() {
    return "log_path=" L4M_SAN_LOG_DIR "/lsan";
}
const char* __ubsan_default_options() {
    return "halt_on_error=1:print_stacktrace=1:log_path=" L4M_SAN_LOG_DIR "/ubsan";
}
const char* __tsan_default_options() {
    return "halt_on_error=1:second_deadlock_stack=1:suppressions=" L4M_TSAN_SUPPRESSIONS
           ":log_path=" L4M_SAN_LOG_DIR "/tsan";
}
}
