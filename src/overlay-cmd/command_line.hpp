#pragma once

#include "vocabulary.hpp"

#include <optional>
#include <string>
#include <vector>

namespace overlay::cmd {

using Verb = vocabulary::Verb;

struct CommandLine {
    Verb verb = Verb::Status;
    std::string name;        // empty for list
    std::string config_path; // the default when not given
    int serve_fd = -1;       // --serve FD: the daemon's executor, no verb
    bool watch = false;      // --watch: with --serve, report mount changes
    bool migrate = false;    // --migrate: with --serve, a Migrate executor
    bool dry_run = false;    // --dry-run: with migrate, change nothing
    bool help = false;
};

// Throws std::invalid_argument with a one-line reason on bad usage.
CommandLine parse_command_line(const std::vector<std::string>& args);

extern const char* const kUsage;

} // namespace overlay::cmd
