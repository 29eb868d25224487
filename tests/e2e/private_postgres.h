// A private PostgreSQL 15 for a test suite (recipe: ../shared/MACHINE.md):
// initdb and pg_ctl as the postgres user, a Unix socket in a temporary
// directory, no TCP. Stopped and removed with the object.
#pragma once

#include <stdlib.h>

#include <cctype>
#include <filesystem>
#include <string>

#include "e2e_util.h"

namespace capaudit::e2e {

class PrivatePostgres {
 public:
  static constexpr const char* kBin = "/usr/lib/postgresql/15/bin";

  PrivatePostgres() {
    char tmpl[] = "/tmp/capaudit-pg-XXXXXX";
    if (!mkdtemp(tmpl)) {
      why_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    const std::string bin = kBin;
    ProcessResult r = run({"chown", "postgres:", dir_});
    if (r.exit_code == 0)
      r = run({"runuser", "-u", "postgres", "--", bin + "/initdb", "-D", dir_ + "/data", "-U", "capaudit", "-A",
               "trust", "--no-sync"});
    if (r.exit_code == 0)
      r = run({"runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/log", "-w",
               "-o", "-c listen_addresses='' -k " + dir_ + " -c fsync=off", "start"});
    started_ = r.exit_code == 0;
    if (!started_) why_ = r.out + r.err;
  }
  ~PrivatePostgres() {
    if (dir_.empty()) return;
    if (started_)
      run({"runuser", "-u", "postgres", "--", std::string(kBin) + "/pg_ctl", "-D", dir_ + "/data", "-m", "fast", "-w",
           "stop"});
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  bool started() const { return started_; }
  const std::string& why() const { return why_; }  // why it did not start
  const std::string& dir() const { return dir_; }
  std::string conninfo(const std::string& db) const { return "host=" + dir_ + " dbname=" + db + " user=capaudit"; }
  // A fresh database named after `name` (lower-cased); its connection string.
  std::string create_database(std::string name, std::string* err) const {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ProcessResult r = run({"psql", conninfo("postgres"), "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE " + name});
    if (r.exit_code != 0) {
      *err = r.err;
      return "";
    }
    return conninfo(name);
  }

 private:
  std::string dir_, why_;
  bool started_ = false;
};

}  // namespace capaudit::e2e
