#include "config_source.hpp"

#include "error.hpp"

#include <cerrno>
#include <fcntl.h>

namespace overlay::cmd {

ConfigSource::ConfigSource(std::string path) : path_(std::move(path)) {
    const auto slash = path_.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    dir_ = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) {
        throw_errno(ErrorCode::BadConfig, printable(path_) + ": cannot open its directory", errno);
    }
}

bool ConfigSource::Identity::operator==(const Identity& o) const noexcept {
    return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size &&
           mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

ConfigSource::Identity ConfigSource::identity() const {
    struct stat st {};
    Identity id;
    if (::fstatat(dir_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return id; // missing or unreadable: load() says which
    }
    id.exists = true;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = st.st_size;
    id.mtime = st.st_mtim;
    id.ctime = st.st_ctim;
    return id;
}

bool ConfigSource::changed() const {
    return !loaded_ || !(identity() == last_);
}

Config ConfigSource::load() {
    // Identity first: a change during the read makes the next changed()
    // true, so a half-old view is never kept.
    const Identity before = identity();
    loaded_ = false;
    Config config = load_config_at(dir_.get(), name_, path_);
    last_ = before;
    loaded_ = true;
    return config;
}

} // namespace overlay::cmd
