#include "command_line.hpp"

namespace overlay::ctl {

const char* const kHelpText =
    "Usage: left4me-overlayctl [OPTIONS] mount|unmount|status NAME\n"
    "       left4me-overlayctl [OPTIONS] list\n"
    "\n"
    "Mounts, unmounts and shows the overlays of left4me instances through the\n"
    "D-Bus service org.left4me.Overlay1 (left4me-overlayd). Mount and unmount are\n"
    "authorized by polkit: when a password is needed and standard input is a\n"
    "terminal, it is asked for there.\n"
    "\n"
    "Commands:\n"
    "  mount NAME        mount the overlay of instance NAME\n"
    "  unmount NAME      unmount it (umount is accepted too)\n"
    "  status NAME       show whether NAME is mounted, its mount point and lowerdirs\n"
    "  list              list the instances and whether each is mounted\n"
    "\n"
    "Options:\n"
    "  --no-ask-password do not ask for a password: fail if polkit wants one\n"
    "  --json            print status and list as JSON (one line)\n"
    "  -h, --help        print this help and exit\n"
    "  --version         print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  success (status: also when the instance is not mounted)\n"
    "  1  the service refused or failed the operation\n"
    "  2  bad usage\n"
    "  3  not authorized (polkit said no, or a password was needed and could not\n"
    "     be asked for)\n"
    "  4  the service could not be reached (no system bus, service not installed\n"
    "     or failed to start, no answer in time)\n";

const char* verb_word(Verb verb) {
    switch (verb) {
    case Verb::Mount:
        return "mount";
    case Verb::Unmount:
        return "unmount";
    case Verb::Status:
        return "status";
    case Verb::List:
        return "list";
    }
    return "?";
}

namespace {

Verb parse_verb(const std::string& word) {
    if (word == "mount") {
        return Verb::Mount;
    }
    // "umount" is the drop-in command's (and umount(8)'s) word for it.
    if (word == "unmount" || word == "umount") {
        return Verb::Unmount;
    }
    if (word == "status") {
        return Verb::Status;
    }
    if (word == "list") {
        return Verb::List;
    }
    throw UsageError("unknown command '" + word + "'");
}

} // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    std::vector<std::string> positional;
    bool options_done = false;
    // Options may come anywhere, as with systemd's tools; instance names
    // never start with '-', so nothing is lost by taking '-' words as options.
    for (const auto& arg : args) {
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            positional.push_back(arg);
        } else if (arg == "--") {
            options_done = true;
        } else if (arg == "-h" || arg == "--help") {
            cl.help = true;
        } else if (arg == "--version") {
            cl.version = true;
        } else if (arg == "--no-ask-password") {
            cl.ask_password = false;
        } else if (arg == "--json") {
            cl.json = true;
        } else {
            throw UsageError("unknown option '" + arg + "'");
        }
    }
    if (cl.help || cl.version) {
        return cl;
    }
    if (positional.empty()) {
        throw UsageError("no command given");
    }
    cl.verb = parse_verb(positional[0]);
    if (cl.verb == Verb::List) {
        if (positional.size() != 1) {
            throw UsageError("list takes no instance name");
        }
    } else {
        if (positional.size() != 2) {
            throw UsageError(std::string(verb_word(cl.verb)) + " needs exactly one instance name");
        }
        cl.instance = positional[1];
    }
    if (cl.json && (cl.verb == Verb::Mount || cl.verb == Verb::Unmount)) {
        throw UsageError("--json applies to status and list only");
    }
    return cl;
}

} // namespace overlay::ctl
