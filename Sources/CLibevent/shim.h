// libevent for Swift. sys/select.h must come before any event2 header: event-config.h defines
// _GNU_SOURCE, which changes fd_set's layout and clashes with other C modules (SWIFT-C-NOTES.md).
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
