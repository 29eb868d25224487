// The PostgreSQL client, loaded by the first fleet command that talks to
// PostgreSQL instead of at every start: linked in, libpq and the twenty
// libraries it pulls (Kerberos, LDAP, GnuTLS, ...) cost every capaudit
// command about 5 ms of loading and relocating before main, half of what
// `report --binary` may take (issue 14), though only fleet_pg.cpp uses it.
// These are the entry points fleet_pg.{h,cpp} call (lib/lazy_library.h).
#include "lazy_library.h"

#include <libpq-fe.h>

namespace {
capaudit::LazyLibrary libpq("libpq.so.5", "the PostgreSQL client library");
}

#define CAPAUDIT_LIBPQ(ret, name, params, args) CAPAUDIT_LAZY(libpq, ret, name, params, args)

CAPAUDIT_LIBPQ(PGconn*, PQconnectdb, (const char* conninfo), (conninfo))
CAPAUDIT_LIBPQ(void, PQfinish, (PGconn * conn), (conn))
CAPAUDIT_LIBPQ(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** errmsg), (conninfo, errmsg))
CAPAUDIT_LIBPQ(void, PQconninfoFree, (PQconninfoOption * options), (options))
CAPAUDIT_LIBPQ(void, PQfreemem, (void* ptr), (ptr))
CAPAUDIT_LIBPQ(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
CAPAUDIT_LIBPQ(char*, PQerrorMessage, (const PGconn* conn), (conn))
CAPAUDIT_LIBPQ(int, PQsetClientEncoding, (PGconn * conn, const char* encoding), (conn, encoding))
CAPAUDIT_LIBPQ(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor proc, void* arg),
               (conn, proc, arg))
CAPAUDIT_LIBPQ(PGresult*, PQexec, (PGconn * conn, const char* query), (conn, query))
CAPAUDIT_LIBPQ(PGresult*, PQexecParams,
               (PGconn * conn, const char* command, int nParams, const Oid* paramTypes,
                const char* const* paramValues, const int* paramLengths, const int* paramFormats, int resultFormat),
               (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat))
CAPAUDIT_LIBPQ(PGresult*, PQgetResult, (PGconn * conn), (conn))
CAPAUDIT_LIBPQ(int, PQputCopyData, (PGconn * conn, const char* buffer, int nbytes), (conn, buffer, nbytes))
CAPAUDIT_LIBPQ(int, PQputCopyEnd, (PGconn * conn, const char* errormsg), (conn, errormsg))
CAPAUDIT_LIBPQ(ExecStatusType, PQresultStatus, (const PGresult* res), (res))
CAPAUDIT_LIBPQ(char*, PQresultErrorMessage, (const PGresult* res), (res))
CAPAUDIT_LIBPQ(int, PQntuples, (const PGresult* res), (res))
CAPAUDIT_LIBPQ(char*, PQgetvalue, (const PGresult* res, int row, int col), (res, row, col))
CAPAUDIT_LIBPQ(int, PQgetisnull, (const PGresult* res, int row, int col), (res, row, col))
CAPAUDIT_LIBPQ(void, PQclear, (PGresult * res), (res))
