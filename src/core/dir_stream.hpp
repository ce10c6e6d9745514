// A directory stream that closes itself (and with it the descriptor it was
// opened on).
#pragma once

#include <dirent.h>
#include <memory>

namespace overlay {

struct DirStreamCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};
using DirStream = std::unique_ptr<DIR, DirStreamCloser>;

} // namespace overlay
