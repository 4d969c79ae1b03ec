// PDF through a headless Chromium (Debian's `chromium` package): it prints the
// same page a browser shows, charts included. Run with a throw-away profile,
// no network, and a deadline.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/strings.h"
#include "core/time.h"
#include "report/report.h"

extern char** environ;

namespace palisade::report {
namespace {

bool executable(const std::string& p) {
  return ::access(p.c_str(), X_OK) == 0;
}

// A file:// URL of an absolute path: bytes other than unreserved ones and '/'
// percent-encoded (spaces, '#', '?', '%' and non-ASCII in names).
std::string fileUrl(const std::string& path) {
  std::string url = "file://";
  for (const unsigned char c : path) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
        c == '-' || c == '_' || c == '.' || c == '~') {
      url += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      url += hex;
    }
  }
  return url;
}

}  // namespace

std::string findPdfRenderer() {
  if (const char* env = std::getenv("PALISADE_CHROMIUM"); env && *env)
    return executable(env) ? env : std::string();
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (executable(p)) return p;
  return {};
}

Status renderPdf(const std::string& html_path, const std::string& pdf_path, int timeout_s) {
  const std::string chromium = findPdfRenderer();
  if (chromium.empty())
    return makeError(
        "PDF needs Chromium and none is installed (apt install chromium; or set "
        "PALISADE_CHROMIUM); the HTML report was written");
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string html = fs::absolute(html_path, ec).string();
  const std::string pdf = fs::absolute(pdf_path, ec).string();
  char profile[] = "/tmp/palisade-pdf-XXXXXX";
  if (!::mkdtemp(profile)) return makeError(errnoText("mkdtemp"));
  const std::string tmp_pdf = strCat(pdf, ".tmp");
  std::vector<std::string> args = {chromium, "--headless", "--disable-gpu",
                                   // Root cannot use Chromium's sandbox; the page is our own
                                   // static HTML with no script, read from a local file.
                                   "--no-sandbox", "--no-first-run", "--disable-extensions",
                                   "--disable-background-networking", "--disable-sync",
                                   "--disable-default-apps",
                                   "--proxy-server=127.0.0.1:9",  // nothing leaves the machine
                                   "--no-pdf-header-footer", strCat("--user-data-dir=", profile),
                                   strCat("--print-to-pdf=", tmp_pdf), fileUrl(html)};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // Chromium is talkative on stderr (D-Bus, GPU); its exit status is what counts.
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, chromium.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  Status result;
  if (rc != 0) {
    errno = rc;
    result = makeError(errnoText(chromium));
  } else {
    const TimeNs deadline = monotonicNs() + static_cast<TimeNs>(timeout_s) * 1000000000ull;
    int status = 0;
    for (;;) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (w < 0 && errno != EINTR) {
        result = makeError(errnoText("waitpid"));
        break;
      }
      if (monotonicNs() > deadline) {
        ::kill(-pid, SIGKILL);  // its whole process group: renderer and GPU helpers too
        ::waitpid(pid, &status, 0);
        result = makeError(
            strCat(chromium, " did not finish the PDF within ", std::to_string(timeout_s), " s"));
        break;
      }
      ::usleep(50000);
    }
    if (result && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
      result = makeError(strCat(chromium, " failed to print the PDF (exit status ",
                                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1), ")"));
    ::kill(-pid, SIGKILL);  // helpers that outlived it
  }
  if (result) {
    struct stat st {};
    if (::stat(tmp_pdf.c_str(), &st) != 0 || st.st_size < 5)
      result = makeError(strCat(chromium, " wrote no PDF"));
    else if (::rename(tmp_pdf.c_str(), pdf.c_str()) != 0)
      result = makeError(errnoText(pdf));
  }
  ::unlink(tmp_pdf.c_str());
  fs::remove_all(profile, ec);
  return result;
}

}  // namespace palisade::report
