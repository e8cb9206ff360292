// sessiongridctl: collects argv and $SESSIONGRID_SERVER, runs the command.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "ctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* env_server = std::getenv("SESSIONGRID_SERVER");
  return sg::client::RunCtl(args, env_server != nullptr ? env_server : "",
                            std::cout, std::cerr);
}
