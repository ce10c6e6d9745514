// The config file of a persistent executor, re-read whenever it changes
// (another file renamed over it, or the same file rewritten), as the drop-in
// run per call reads it afresh. Its directory is opened once, in
// the namespace the executor started in, before it enters the host's: the
// file it re-reads is the one it was started with, wherever the mounts go.
#pragma once

#include "config.hpp"
#include "unique_fd.hpp"

#include <ctime>
#include <string>
#include <sys/stat.h>

namespace overlay::cmd {

class ConfigSource {
  public:
    // Throws Error(BadConfig) when the directory cannot be opened.
    explicit ConfigSource(std::string path);

    // True when the file's identity, size, mtime or ctime differ from the
    // last load (or nothing was loaded yet). One fstatat.
    bool changed() const;

    // load_config of the file, remembering what it loaded. Throws as
    // load_config does.
    Config load();

    const std::string& path() const noexcept { return path_; }

  private:
    struct Identity {
        bool exists = false;
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = 0;
        timespec mtime{};
        timespec ctime{};
        bool operator==(const Identity& o) const noexcept;
    };
    Identity identity() const;

    std::string path_;
    std::string name_;
    UniqueFd dir_;
    bool loaded_ = false;
    Identity last_;
};

} // namespace overlay::cmd
