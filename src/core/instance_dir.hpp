// One instance's directory (InstancesDir/NAME), owned by the unprivileged
// user: every entry is opened by descriptor beneath it, one component deep.
#pragma once

#include "host_layout.hpp"
#include "unique_fd.hpp"

#include <string>
#include <string_view>

namespace overlay {

class InstanceDir {
  public:
    // Throws NoSuchInstance, or UnsafePath when NAME is a symlink, no
    // directory, or on another mount than InstancesDir (a mount point).
    // The name must already be valid.
    InstanceDir(const HostLayout& layout, std::string_view name);

    const std::string& name() const { return name_; }
    const std::string& path() const { return path_; }
    int fd() const { return fd_.get(); }
    std::string path_of(std::string_view entry) const { return path_ + "/" + std::string(entry); }

    // The bytes of instance.env: a regular file, at most 64 KiB (one byte
    // more is read so that an oversized file is refused, not cut).
    std::string read_env() const;

    // upper, work, merged: real directories directly inside the instance.
    // Whether each must also be on the instance dir's mount is the
    // caller's to check (merged is, once mounted, by design not).
    UniqueFd open_subdir(std::string_view entry, int flags) const;

  private:
    std::string name_;
    std::string path_;
    UniqueFd fd_;
};

} // namespace overlay
