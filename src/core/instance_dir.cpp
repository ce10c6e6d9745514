#include "instance_dir.hpp"

#include "error.hpp"
#include "fs_open.hpp"
#include "instance_env.hpp"
#include "read_at_most.hpp"
#include "same_mount.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

InstanceDir::InstanceDir(const HostLayout& layout, std::string_view name)
    : name_(name), path_(layout.config().instances_dir + "/" + std::string(name)) {
    auto opened = open_beneath(layout.instances_fd(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (opened.error() == ENOENT) {
        throw Error(ErrorCode::NoSuchInstance,
                    instance_context(name_) + "no directory " + printable(path_));
    }
    if (!opened.ok()) {
        throw Error(ErrorCode::UnsafePath, instance_context(name_) + printable(path_) + " " +
                                               describe_open_failure(opened.error()));
    }
    fd_ = opened.take();
    // A directory mounted there (a user's FUSE mount, a bind mount) is not
    // the instance the layout holds.
    require_same_mount(layout.instances_fd(), layout.config().instances_dir, fd_.get(), path_,
                       name_);
}

std::string InstanceDir::read_env() const {
    const std::string env_path = path_of("instance.env");
    // O_NONBLOCK: a FIFO planted there must not hang us.
    auto opened =
        open_beneath(fd_.get(), "instance.env", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (opened.error() == ENOENT) {
        throw Error(ErrorCode::BadConfig,
                    instance_context(name_) + printable(env_path) + " does not exist");
    }
    if (opened.error() == ELOOP) {
        throw Error(ErrorCode::UnsafePath,
                    instance_context(name_) + printable(env_path) + " is a symlink");
    }
    if (!opened.ok()) {
        throw Error(ErrorCode::BadConfig, instance_context(name_) + "cannot open " +
                                              printable(env_path) + ": " +
                                              describe_open_failure(opened.error()));
    }
    UniqueFd fd = opened.take();
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(ErrorCode::Failed, instance_context(name_) + "stat " + printable(env_path),
                    errno);
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(ErrorCode::UnsafePath,
                    instance_context(name_) + printable(env_path) + " is not a regular file");
    }
    // One byte more than allowed is read, so that the parser refuses an
    // oversized file instead of reading a cut one.
    std::string content = read_at_most(fd.get(), kMaxInstanceEnvBytes, ErrorCode::BadConfig,
                                       instance_context(name_) + printable(env_path));
    return content;
}

UniqueFd InstanceDir::open_subdir(std::string_view entry, int flags) const {
    auto opened = open_beneath(fd_.get(), entry, flags | O_DIRECTORY | O_NOFOLLOW);
    if (!opened.ok()) {
        throw Error(ErrorCode::UnsafePath, instance_context(name_) + printable(path_of(entry)) +
                                               " " + describe_open_failure(opened.error()));
    }
    return opened.take();
}

} // namespace overlay
