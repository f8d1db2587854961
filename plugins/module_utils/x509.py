# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Just enough X.509 to judge a certificate's expiry, without the cryptography package
(managed hosts have only Python's standard library): PEM blocks to DER, a small DER reader,
notAfter and the subject's common name."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import calendar
import re
import time

PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
OID_CN = b"\x55\x04\x03"


def pem_certificates(text):
    """DER bytes of every certificate block in a PEM text."""
    out = []
    for body in PEM_RE.findall(text):
        out.append(base64.b64decode("".join(body.split())))
    return out


def der_tlv(data, pos):
    """(tag, value_start, value_end) of the DER element at pos."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("DER element overruns its container")
    return tag, pos, pos + length


def der_children(data, start, end):
    pos = start
    while pos < end:
        tag, vstart, vend = der_tlv(data, pos)
        yield tag, vstart, vend
        pos = vend


def der_time(tag, raw):
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise ValueError("certificate time without Z: %r" % text)
    text = text[:-1]
    if tag == 0x17:  # UTCTime, YYMMDDHHMM[SS]
        year = int(text[:2])
        text = ("20" if year < 50 else "19") + text
    elif tag != 0x18:  # GeneralizedTime
        raise ValueError("not a time element (tag 0x%02x)" % tag)
    if len(text) == 12:
        text += "00"
    parsed = time.strptime(text[:14], "%Y%m%d%H%M%S")
    return calendar.timegm(parsed)


def certificate_info(der):
    """{'not_after': epoch seconds, 'subject_cn': str or None} of one DER certificate."""
    tag, start, end = der_tlv(der, 0)
    if tag != 0x30:
        raise ValueError("certificate is not a SEQUENCE")
    tag, tbs_start, tbs_end = der_tlv(der, start)
    if tag != 0x30:
        raise ValueError("tbsCertificate is not a SEQUENCE")
    fields = [f for f in der_children(der, tbs_start, tbs_end)]
    if fields and fields[0][0] == 0xA0:  # explicit version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < 5:
        raise ValueError("tbsCertificate too short")
    _tag, vstart, vend = fields[3]
    times = list(der_children(der, vstart, vend))
    if len(times) != 2:
        raise ValueError("validity does not hold two times")
    ttag, tstart, tend = times[1]
    not_after = der_time(ttag, der[tstart:tend])
    return {"not_after": not_after, "subject_cn": subject_cn(der, fields[4][1], fields[4][2])}


def subject_cn(der, start, end):
    for _stag, sstart, send in der_children(der, start, end):  # SET per RDN
        for _atag, astart, aend in der_children(der, sstart, send):  # SEQUENCE {oid, value}
            parts = list(der_children(der, astart, aend))
            if len(parts) == 2 and parts[0][0] == 0x06 and der[parts[0][1]:parts[0][2]] == OID_CN:
                raw = der[parts[1][1]:parts[1][2]]
                if parts[1][0] == 0x1E:  # BMPString
                    return raw.decode("utf-16-be", "replace")
                return raw.decode("utf-8", "replace")
    return None


OID_BASIC_CONSTRAINTS = b"\x55\x1d\x13"
OID_SAN = b"\x55\x1d\x11"


def certificate_details(der):
    """:func:`certificate_info` plus ``is_ca`` (basicConstraints cA), ``self_signed`` (issuer equals
    subject) and ``dns_names`` (subjectAltName), to tell a leaf from a CA of the system store."""
    info = certificate_info(der)
    _tag, start, end = der_tlv(der, 0)
    _tag, tbs_start, tbs_end = der_tlv(der, start)
    fields = list(der_children(der, tbs_start, tbs_end))
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    issuer, subject = fields[2], fields[4]
    info["self_signed"] = der[issuer[1]:issuer[2]] == der[subject[1]:subject[2]]
    info["is_ca"] = False
    info["dns_names"] = []
    for tag, vstart, _vend in fields[6:]:
        if tag != 0xA3:  # [3] extensions
            continue
        _t, seq_start, seq_end = der_tlv(der, vstart)
        for _etag, estart, eend in der_children(der, seq_start, seq_end):
            parts = list(der_children(der, estart, eend))
            oid = der[parts[0][1]:parts[0][2]]
            value = parts[-1]  # OCTET STRING holding the extension's DER
            if oid == OID_BASIC_CONSTRAINTS:
                _st, bstart, bend = der_tlv(der, value[1])
                inner = list(der_children(der, bstart, bend))
                info["is_ca"] = bool(inner and inner[0][0] == 0x01 and der[inner[0][1]:inner[0][2]] != b"\x00")
            elif oid == OID_SAN:
                _st, sstart, send = der_tlv(der, value[1])
                info["dns_names"] = [der[a:b].decode("ascii", "replace")
                                     for t, a, b in der_children(der, sstart, send) if t == 0x82]
    return info
