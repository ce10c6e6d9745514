#include "scratch.hpp"

#include "mountinfo.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

namespace l4m_test {

namespace fs = std::filesystem;

namespace {
std::string g_scratch;
int g_counter = 0;
// Overlays the host had when the test started (a running instance, a
// container runtime's layers) are copied into our namespace; they are not
// ours to count.
std::set<std::uint64_t> g_preexisting_overlays;
} // namespace

void init_scratch() {
    char tmpl[] = "/tmp/l4m-root-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr || ::mount("tmpfs", tmpl, "tmpfs", 0, "mode=0755") != 0) {
        std::perror("scratch tmpfs");
        std::exit(1);
    }
    g_scratch = tmpl;
    for (const auto& e : overlay::read_mountinfo(::getpid())) {
        if (e.fs_type == "overlay") {
            g_preexisting_overlays.insert(e.mount_id);
        }
    }
}

const std::string& scratch() {
    return g_scratch;
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void make_dirs(const std::string& path) {
    fs::create_directories(path);
}

std::string Layout::instance_dir(const std::string& name) const {
    return root + "/instances/" + name;
}

void Layout::add_instance(const std::string& name, const std::string& lowerdirs) const {
    const auto dir = instance_dir(name);
    for (const char* sub : {"/upper", "/work", "/merged"}) {
        make_dirs(dir + sub);
    }
    set_env(name, "L4D2_LOWERDIRS=\"" + lowerdirs + "\"\n");
}

void Layout::set_env(const std::string& name, const std::string& content) const {
    write_file(instance_dir(name) + "/instance.env", content);
}

Layout make_layout(overlay::MountApi api) {
    Layout l;
    const std::string base =
        scratch() + "/t" + std::to_string(::getpid()) + "-" + std::to_string(++g_counter);
    l.root = base + "/root";
    l.outside = base + "/outside";
    l.lock_dir = base + "/locks";
    make_dirs(l.root + "/installation/base");
    make_dirs(l.root + "/overlays/mod");
    make_dirs(l.outside);
    write_file(l.root + "/installation/base/a.txt", "base-a\n");
    write_file(l.root + "/installation/base/b.txt", "base-b\n");
    write_file(l.root + "/overlays/mod/a.txt", "mod-a\n");
    write_file(l.outside + "/secret.txt", "outside\n");
    const char* api_name = api == overlay::MountApi::LayerFds          ? "fd"
                           : api == overlay::MountApi::LowerdirStrings ? "string"
                           : api == overlay::MountApi::Legacy          ? "legacy"
                                                                       : "auto";
    l.config = overlay::parse_config(
        "Root=" + l.root + "\nMountApi=" + api_name + "\nLockDir=" + l.lock_dir + "\n", "test");
    l.add_instance("alpha", l.root + "/overlays/mod:" + l.root + "/installation/base");
    return l;
}

std::vector<overlay::MountEntry> overlays_under(const std::string& prefix) {
    std::vector<overlay::MountEntry> out;
    for (auto& e : overlay::read_mountinfo(::getpid())) {
        if (e.fs_type == "overlay" && !g_preexisting_overlays.contains(e.mount_id) &&
            (prefix.empty() || e.mount_point == prefix ||
             e.mount_point.starts_with(prefix + "/"))) {
            out.push_back(e);
        }
    }
    return out;
}

int overlays_at(const std::string& path) {
    int n = 0;
    for (auto& e : overlays_under(path)) {
        n += e.mount_point == path;
    }
    return n;
}

int run_command(const std::vector<std::string>& argv, std::string* err) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe");
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipefd[1], 2);
        std::vector<char*> args;
        for (auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    std::string captured;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) {
        captured.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (err) {
        *err = captured;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace l4m_test
