#include "private_bus.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace overlay::daemon::testing {

namespace {

std::string config(const std::string& socket_name) {
    return "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
           " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
           "<busconfig>\n"
           "  <listen>unix:abstract=" +
           socket_name +
           "</listen>\n"
           "  <auth>EXTERNAL</auth>\n"
           "  <policy context=\"default\">\n"
           "    <allow user=\"*\"/>\n"
           "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
           "    <allow eavesdrop=\"true\"/>\n"
           "    <allow own=\"*\"/>\n"
           "  </policy>\n"
           "</busconfig>\n";
}

} // namespace

PrivateBus::PrivateBus() {
    std::string dir = (std::filesystem::temp_directory_path() / "l4m-unit-bus.XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    dir_ = dir;
    const std::string conf = dir_ + "/bus.conf";
    std::ofstream(conf) << config(dir_.substr(dir_.rfind('/') + 1) + "-" +
                                  std::to_string(getpid()));

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    g_autofree gchar* program = g_find_program_in_path("dbus-daemon");
    if (program == nullptr) {
        close(out[0]);
        close(out[1]);
        throw std::runtime_error("dbus-daemon is not installed");
    }
    std::string config_arg = "--config-file=" + conf;
    const char* argv[] = {program,       config_arg.c_str(),  "--nofork",
                          "--nopidfile", "--print-address=1", nullptr};
    // fork and exec rather than posix_spawn, for PR_SET_PDEATHSIG: a test
    // program that is killed (a ctest timeout) takes its bus with it. The
    // child makes only async-signal-safe calls.
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(out[1], STDOUT_FILENO);
        execv(argv[0], const_cast<char* const*>(argv));
        _exit(127);
    }
    close(out[1]);
    if (pid_ < 0) {
        close(out[0]);
        throw std::runtime_error("cannot start dbus-daemon");
    }
    // The address is printed once the bus listens: read up to the newline.
    char c = 0;
    ssize_t n = 0;
    while ((n = read(out[0], &c, 1)) == 1 && c != '\n') {
        address_ += c;
    }
    close(out[0]);
    if (address_.empty()) {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        throw std::runtime_error("dbus-daemon printed no address");
    }
}

PrivateBus::~PrivateBus() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

PrivateBus& shared_bus() {
    static PrivateBus bus;
    return bus;
}

glib::Object<GDBusConnection> connect(const std::string& address) {
    g_autoptr(GError) error = nullptr;
    glib::Object<GDBusConnection> bus(g_dbus_connection_new_for_address_sync(
        address.c_str(),
        static_cast<GDBusConnectionFlags>(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION),
        nullptr, nullptr, &error));
    if (!bus) {
        throw std::runtime_error(std::string("cannot connect to the test bus: ") + error->message);
    }
    return bus;
}

glib::Object<GDBusConnection> connect_unprivileged(const std::string& address) {
    return connect_as(address, kNobody);
}

glib::Object<GDBusConnection> connect_as(const std::string& address, uid_t uid) {
    if (geteuid() != 0) {
        return connect(address);
    }
    // The bus learns a connection's uid from the socket (SO_PEERCRED, taken
    // at connect()) and the EXTERNAL handshake, both of the connecting
    // thread. The raw syscall changes only this short-lived thread's
    // effective uid (glibc's setresuid would change every thread's), so the
    // rest of the test keeps running as root.
    glib::Object<GDBusConnection> bus;
    std::string failure;
    std::thread([&] {
        if (syscall(SYS_setresuid, -1, uid, -1) != 0) {
            failure = "setresuid failed";
            return;
        }
        try {
            bus = connect(address);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        syscall(SYS_setresuid, -1, 0, -1);
    }).join();
    if (!bus) {
        throw std::runtime_error(failure);
    }
    return bus;
}

} // namespace overlay::daemon::testing
