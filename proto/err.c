#include "err.h"

#include <string.h>

const char *vc_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define VC_ERR_CASE(name, off, text) \
    case VC_E##name:                 \
        return text;
        VC_ERR_TABLE(VC_ERR_CASE)
#undef VC_ERR_CASE
    }
    if (code < 0 && code > VC_ERR_BASE)
        return strerror(-code);
    return "unknown error";
}

const char *vc_errname(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define VC_ERR_NAME(name, off, text) \
    case VC_E##name:                 \
        return #name;
        VC_ERR_TABLE(VC_ERR_NAME)
#undef VC_ERR_NAME
    }
    return code < 0 && code > VC_ERR_BASE ? "SYSTEM" : "UNKNOWN";
}
