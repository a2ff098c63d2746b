// cachet: parse the command line, run the server.
import CachetServer
import Glibc

exit(CachetServerMain.run(arguments: Array(CommandLine.arguments.dropFirst())))
