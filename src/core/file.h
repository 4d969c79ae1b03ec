// Files replaced whole: a reader sees the old content or the new, never a mix.
#pragma once

#include <sys/types.h>
#include <string>
#include <string_view>

#include "core/result.h"

namespace palisade {

// Writes text to path.tmp (created with `mode`), fsyncs it and renames it over
// path. The temporary file is removed when anything fails.
Status writeFileAtomically(const std::string& path, std::string_view text, mode_t mode = 0644);

// A whole file, refused past max_bytes. Errors: "cannot open: why",
// "cannot read: why", "larger than N bytes".
Result<std::string> readFile(const std::string& path, uint64_t max_bytes);

}  // namespace palisade
