// Descriptors for the configured roots, opened afresh for each operation.
#pragma once

#include "config.hpp"
#include "unique_fd.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace overlay {

class HostLayout {
  public:
    explicit HostLayout(const Config& config);

    const Config& config() const { return config_; }
    int instances_fd() const { return instances_.get(); }

    // Opens a directory given by a configured absolute path: strictly
    // beneath Root when it lies there (Root's contents belong to the
    // unprivileged user), otherwise as the admin wrote it.
    UniqueFd open_configured_dir(const std::string& path, int flags) const;

  private:
    const Config& config_;
    UniqueFd root_;
    UniqueFd instances_;
};

} // namespace overlay
