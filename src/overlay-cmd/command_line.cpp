#include "command_line.hpp"

#include "config.hpp"
#include "error.hpp"

#include <charconv>
#include <stdexcept>

namespace overlay::cmd {

const char* const kUsage =
    "Usage: left4me-overlay [--config PATH] mount|umount|status NAME\n"
    "       left4me-overlay [--config PATH] list\n"
    "       left4me-overlay [--config PATH] migrate NAME [--dry-run]\n"
    "       left4me-overlay [--config PATH] --serve FD [--watch|--migrate]  (the daemon's)\n"
    "Mounts or unmounts the overlay of a left4me instance in the host mount namespace.\n"
    "Exit status: 0 on success, 1 when the operation was refused or failed, 2 on bad usage.\n";

namespace {

int parse_fd(const std::string& text) {
    int fd = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (ec != std::errc() || end != text.data() + text.size() || fd < 3) {
        throw std::invalid_argument("--serve needs a descriptor number of at least 3");
    }
    return fd;
}

} // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    cl.config_path = kDefaultConfigPath;
    std::vector<std::string> positional;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        auto value = [&](const char* option) -> const std::string& {
            if (i + 1 >= args.size()) {
                throw std::invalid_argument(std::string(option) + " needs a value");
            }
            return args[++i];
        };
        if (arg == "--help" || arg == "-h") {
            cl.help = true;
            return cl;
        } else if (arg == "--config") {
            cl.config_path = value("--config");
        } else if (arg.starts_with("--config=")) {
            cl.config_path = arg.substr(9);
        } else if (arg == "--serve") {
            cl.serve_fd = parse_fd(value("--serve"));
        } else if (arg == "--watch") {
            cl.watch = true;
        } else if (arg == "--migrate") {
            cl.migrate = true;
        } else if (arg == "--dry-run") {
            cl.dry_run = true;
        } else if (arg == "--") {
            positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1,
                              args.end());
            break;
        } else if (arg.starts_with("-") && positional.empty()) {
            throw std::invalid_argument("unknown option " + arg);
        } else {
            positional.push_back(arg);
        }
    }
    if (cl.serve_fd >= 0) {
        if (!positional.empty()) {
            throw std::invalid_argument("--serve takes no verb");
        }
        if (cl.dry_run) {
            throw std::invalid_argument("--dry-run is only for migrate");
        }
        if (cl.watch && cl.migrate) {
            throw std::invalid_argument("--watch and --migrate are different executors");
        }
        return cl;
    }
    if (cl.watch) {
        throw std::invalid_argument("--watch needs --serve");
    }
    if (cl.migrate) {
        throw std::invalid_argument("--migrate needs --serve (the drop-in's verb is migrate)");
    }
    if (positional.empty()) {
        throw std::invalid_argument("no verb given");
    }
    const std::string& word = positional[0];
    const auto verb = vocabulary::verb_from_word(word);
    if (!verb) {
        throw std::invalid_argument("unknown verb '" + printable_bounded(word) + "'");
    }
    cl.verb = *verb;
    if (!vocabulary::verb_info(cl.verb).takes_instance) {
        if (positional.size() != 1) {
            throw std::invalid_argument(word + " takes no instance name");
        }
        if (cl.dry_run) {
            throw std::invalid_argument("--dry-run is only for migrate");
        }
        return cl;
    }
    if (positional.size() != 2) {
        throw std::invalid_argument(word + " takes exactly one instance name");
    }
    cl.name = positional[1];
    if (cl.dry_run && cl.verb != Verb::Migrate) {
        throw std::invalid_argument("--dry-run is only for migrate");
    }
    return cl;
}

} // namespace overlay::cmd
