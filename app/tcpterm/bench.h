// The teardown benchmark's reporting (--bench-csv, with --connect): a
// progress line and a CSV row every second, per role, and a summary at exit.
// Roles: with --ring-pair, worker 0 terminates and the last worker generates.
#pragma once
#include <cstdio>
#include <string>

#include "render.h"

namespace tcpterm::app {

class BenchReporter {
 public:
  BenchReporter(dp::Dataplane& dp, const std::string& csv_path);
  ~BenchReporter();
  bool ok() const { return csv_ != nullptr; }
  void sample(double t, double dt);  // every second
  std::string summary(double seconds);

 private:
  dp::Dataplane& dp_;
  FILE* csv_ = nullptr;
  Totals prev_;
  bool have_prev_ = false;
};

}  // namespace tcpterm::app
