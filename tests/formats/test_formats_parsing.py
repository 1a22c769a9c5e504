"""Tolerant parsing of what partners actually send, and precise errors for what is broken."""

from __future__ import annotations

import io
import json
import random

import pytest

from tests.formats.formats_gen import rand_hex, rand_photodna
from vigil.banks.entry import EntryRecord, Labels, stored_labels
from vigil.formats import FORMATS, FormatError, csvlist, ncmec, pdqlist, stopncii, vics

RNG = random.Random(20261130)
MD5 = [rand_hex(RNG, 32) for _ in range(10)]
SHA1 = [rand_hex(RNG, 40) for _ in range(10)]
SHA256 = [rand_hex(RNG, 64) for _ in range(10)]
PDQ = [rand_hex(RNG, 64) for _ in range(10)]
PHOTODNA = rand_photodna(RNG)
BAD_MD5 = MD5[9][:31]  # one character short
BOM = b"\xef\xbb\xbf"


class Pipe(io.RawIOBase):
    """A non-seekable binary stream (like stdin or a socket), read in small pieces."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), 7, len(self._data) - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def read_all(module, data: bytes | str, name: str = "in.dat", **kw) -> list[EntryRecord]:
    if isinstance(data, str):
        data = data.encode()
    return list(module.read(io.BytesIO(data), name=name, **kw))


def collect(module, data: bytes | str, name: str = "in.dat"):
    """Read in on_error mode: (records, errors)."""
    errors: list[FormatError] = []
    recs = read_all(module, data, name, on_error=errors.append)
    return recs, errors


def no_hash_in(err: FormatError, *values: str) -> None:
    for v in values:
        assert v.lower() not in str(err).lower()


# ---------------------------------------------------------------------------------- CSV

CSV_GOOD = (
    "Signal_Type,Hash,Category_Scheme,CATEGORY,series,tags,Agency_Ref\r\n"
    f"MD5,{MD5[0].upper()},us,1,S-1,a; b;,R1\r\n"
    f"pdq,{PDQ[0]},,uk:A,,,\r\n"
    "\r\n"
    f"sha1,{SHA1[0]},,,,,\r\n"
)


def test_csv_tolerates_bom_crlf_aliases_missing_and_unknown_columns():
    recs = read_all(csvlist, BOM + CSV_GOOD.encode())
    assert [(r.signal_type, r.value) for r in recs] == [
        ("md5", MD5[0]), ("pdq", PDQ[0]), ("sha1", SHA1[0])]
    assert recs[0].labels == Labels(category=("us", "1"), series="S-1", tags=("a", "b"))
    assert recs[0].extra == {"Agency_Ref": "R1"}
    assert recs[1].labels.category == ("uk", "A")
    assert recs[2].labels == Labels() and recs[2].extra == {}


def test_csv_reads_text_streams_paths_and_quality(tmp_path):
    text = f"signal_type,value,quality\npdq,{PDQ[1]},87\n"
    assert next(csvlist.read(io.StringIO(text))).quality == 87
    p = tmp_path / "list.csv"
    p.write_text(text)
    assert next(csvlist.read(p)).quality == 87
    assert next(csvlist.read(str(p))).quality == 87


CSV_BAD = (
    "signal_type,value,category_scheme,category,victim_status,quality\n"
    f"md5,{MD5[1]},,,,\n"              # line 2 ok
    f"md5,{BAD_MD5},,,,\n"             # line 3 bad value
    f"sha1,{SHA1[1]},uk,D,,\n"         # line 4 bad category
    f"sha1,{SHA1[2]},,1,,\n"           # line 5 category without scheme
    f"pdq,{PDQ[1]},,,found,\n"         # line 6 bad victim status
    f"pdq,{PDQ[2]},,,,101\n"           # line 7 bad quality
    f"pdq,{PDQ[3]},,,,50,surplus\n"    # line 8 more cells than columns
    f"md5,{MD5[2]},,,,\n"              # line 9 ok
)


def test_csv_malformed_rows_raise_with_file_line_and_field():
    with pytest.raises(FormatError) as ei:
        read_all(csvlist, CSV_BAD, "partner.csv")
    err = ei.value
    assert (err.file, err.location, err.field) == ("partner.csv", "line 3", "value")
    assert str(err).startswith("partner.csv: line 3: value: ")
    no_hash_in(err, BAD_MD5)


def test_csv_malformed_rows_reported_and_skipped():
    recs, errors = collect(csvlist, CSV_BAD, "partner.csv")
    assert [r.value for r in recs] == [MD5[1], MD5[2]]
    assert [(e.location, e.field) for e in errors] == [
        ("line 3", "value"), ("line 4", "category"), ("line 5", "category_scheme"),
        ("line 6", "victim_status"), ("line 7", "quality"), ("line 8", None)]
    for e in errors:
        no_hash_in(e, BAD_MD5, SHA1[1], SHA1[2], PDQ[1], PDQ[2], PDQ[3])


def test_csv_missing_required_column_is_fatal_even_with_on_error():
    with pytest.raises(FormatError) as ei:
        collect(csvlist, "signal_type,category\nmd5,1\n")
    assert (ei.value.location, ei.value.field) == ("line 1 (header)", "value")


def test_csv_invalid_utf8_is_fatal_after_good_rows():
    data = f"signal_type,value\nmd5,{MD5[0]}\nmd5,\xff\n".encode("latin-1")
    seen: list[EntryRecord] = []
    with pytest.raises(FormatError, match="UTF-8"):
        for r in csvlist.read(io.BytesIO(data), on_error=lambda e: None):
            seen.append(r)


def test_csv_writer_rejects_tags_with_the_separator():
    # refused at the door; one stored by an older version stops the writer, naming it
    with pytest.raises(ValueError, match="tags: must not contain ';'"):
        Labels(tags=("a;b",))
    legacy = stored_labels(None, None, "unknown", ("a;b",), None)
    rec = EntryRecord("md5", MD5[0], legacy)
    with pytest.raises(ValueError, match="record 1"):
        csvlist.write([rec], io.StringIO())


# --------------------------------------------------------------------------------- VICS


def media(i: int, **fields) -> dict:
    m = {"MediaID": 100 + i, "Category": 1, "MD5": MD5[i].upper(), "SHA1": SHA1[i].upper()}
    m.update(fields)
    return {k: v for k, v in m.items() if v is not None}


def test_vics_hash_set_with_strings_for_booleans_and_numbers():
    doc = {"odata.metadata": vics.METADATA, "value": [
        media(0, Category="2", VictimIdentified="True", OffenderIdentified="FALSE",
              IsDistributed=True, MediaSize="2835", Series=" Series A ", Tags="t1, t2",
              Comments="seen in op X", PhotoDNA=PHOTODNA, MimeType="image/jpeg",
              AlternativeHashes=[{"HashName": "SHA256", "HashValue": SHA256[0].upper()},
                                 {"HashName": "pdq", "HashValue": PDQ[0]},
                                 {"HashName": "aHash", "HashValue": "00ff00ff00ff00ff"}],
              MediaFiles=[{"FileName": "x.jpg", "FilePath": "a/b"}]),
        media(1, VictimIdentified="false", Category=None),
        media(2, SHA1=""),
    ]}
    recs = read_all(vics, BOM + json.dumps(doc).encode())
    first = [r for r in recs if r.source_id == "100"]
    assert [(r.signal_type, r.value) for r in first] == [
        ("md5", MD5[0]), ("sha1", SHA1[0]), ("photodna", PHOTODNA), ("sha256", SHA256[0]),
        ("pdq", PDQ[0]), ("ahash", "00ff00ff00ff00ff")]
    lab = first[0].labels
    assert lab == Labels(category=("us", "2"), series="Series A", victim_status="identified",
                         tags=("t1", "t2"), note="seen in op X")
    assert all(r.labels == lab and r.extra == first[0].extra for r in first)
    assert first[0].extra == {"OffenderIdentified": False, "IsDistributed": True,
                              "MediaSize": 2835, "MimeType": "image/jpeg",
                              "MediaFiles": [{"FileName": "x.jpg", "FilePath": "a/b"}]}
    second = [r for r in recs if r.source_id == "101"]
    assert second[0].labels == Labels(victim_status="unidentified")
    third = [r for r in recs if r.source_id == "102"]
    assert [r.signal_type for r in third] == ["md5"]
    assert third[0].labels.victim_status == "unknown"


CASE = {"@odata.context": "http://example.invalid/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases",
        "value": [{"CaseID": "{0E9A}", "SourceApplicationName": "t",
                   "Media": [media(0), media(1)]},
                  {"Media": [media(2)], "CaseID": "{0E9B}"}]}


@pytest.mark.parametrize("doc", [
    CASE,
    {"value": [{"Media": [media(0), media(1)], "CaseID": "x"}, {"Media": [media(2)]}]},
    {"value": [{"CaseID": "empty-case"}, {"Media": [media(0), media(1), media(2)]}]},
    [media(0), media(1), media(2)],
    {"VALUE": [{"mediaid": 100, "md5": MD5[0], "sha1": SHA1[0], "CATEGORY": "1"},
               media(1), media(2)]},
], ids=["case", "media-first", "empty-first-case", "bare-list", "key-case"])
def test_vics_shapes(doc):
    recs = read_all(vics, json.dumps(doc, indent=1))
    assert sorted({r.source_id for r in recs}) == ["100", "101", "102"]
    assert {r.value for r in recs} >= {MD5[0], MD5[1], MD5[2]}
    assert all(r.labels.category == ("us", "1") for r in recs)


def test_vics_reads_non_seekable_streams():
    data = BOM + json.dumps(CASE).encode()
    recs = list(vics.read(io.BufferedReader(Pipe(data), 16)))
    assert len(recs) == 6


def test_vics_empty_files():
    assert read_all(vics, '{"odata.metadata": "x", "value": []}') == []
    assert read_all(vics, "[]") == []
    with pytest.raises(FormatError, match="not a VICS file"):
        read_all(vics, '{"records": []}')


VICS_BAD = {"value": [
    media(0),
    media(1, MD5=BAD_MD5),                                   # record 2
    media(2),
    {"MediaID": 103, "Category": 1, "MediaSize": 10},        # record 4: no hash
    media(4, Category=9),                                    # record 5
    media(5, VictimIdentified="maybe"),                      # record 6
    media(6, AlternativeHashes=[{"HashName": "PDQ", "HashValue": "zz"}]),  # record 7
    "not an object",                                         # record 8
    media(8),
]}


def test_vics_malformed_media_raise():
    with pytest.raises(FormatError) as ei:
        read_all(vics, json.dumps(VICS_BAD), "hashset.json")
    err = ei.value
    assert (err.file, err.location, err.field) == ("hashset.json", "record 2 (MediaID 101)",
                                                   "MD5")
    assert "32 hex" in err.reason
    no_hash_in(err, BAD_MD5, SHA1[1])


def test_vics_malformed_media_skipped_whole_and_reported():
    recs, errors = collect(vics, json.dumps(VICS_BAD), "hashset.json")
    assert sorted({r.source_id for r in recs}) == ["100", "102", "108"]
    assert SHA1[1] not in {r.value for r in recs}  # the good SHA1 of a bad Media is skipped
    assert [(e.location, e.field) for e in errors] == [
        ("record 2 (MediaID 101)", "MD5"),
        ("record 4 (MediaID 103)", None),
        ("record 5 (MediaID 104)", "Category"),
        ("record 6 (MediaID 105)", "VictimIdentified"),
        ("record 7 (MediaID 106)", "AlternativeHashes[0].HashValue"),
        ("record 8", None)]


def test_vics_truncated_file_is_fatal_after_good_records():
    text = json.dumps({"value": [media(0), media(1), media(2)]})
    cut = text[: text.index(MD5[2].upper()) + 5]
    seen: list[EntryRecord] = []
    errors: list[FormatError] = []
    with pytest.raises(FormatError) as ei:
        for r in vics.read(io.BytesIO(cut.encode()), name="cut.json", on_error=errors.append):
            seen.append(r)
    assert {r.source_id for r in seen} == {"100", "101"}
    assert ei.value.location == "after record 2"
    assert "invalid JSON" in ei.value.reason
    no_hash_in(ei.value, MD5[2][:5])


def test_vics_writer_output():
    recs = [
        EntryRecord("md5", MD5[0], Labels(category=("ncmec", "A1"),
                                          victim_status="unidentified"), source_id="7"),
        EntryRecord("pdq", PDQ[0], Labels(category=("ncmec", "A1"),
                                          victim_status="unidentified"), source_id="7",
                    quality=90),
        EntryRecord("sha1", SHA1[0], Labels(category=("us", "3")), source_id="abc"),
        EntryRecord("sha1", SHA1[1], Labels(category=("interpol", "no")), extra={
            "IsDistributed": True}),
    ]
    buf = io.BytesIO()
    assert vics.write(recs, buf) == 4
    doc = json.loads(buf.getvalue())
    assert doc["odata.metadata"] == vics.METADATA
    m = doc["value"]
    assert [x["MediaID"] for x in m] == [7, 8, 9]
    assert m[0] == {"MediaID": 7, "Category": 1, "MD5": MD5[0].upper(),
                    "VictimIdentified": "false",
                    "AlternativeHashes": [{"HashName": "PDQ", "HashValue": PDQ[0],
                                           "Quality": 90}]}
    assert m[1]["Category"] == 3 and m[1]["SHA1"] == SHA1[0].upper()
    assert m[2]["Category"] == 0 and m[2]["IsDistributed"] == "true"


def test_vics_writer_refuses_removals():
    with pytest.raises(ValueError, match="no deletions"):
        vics.write([EntryRecord("md5", MD5[0], op="remove")], io.StringIO())


# -------------------------------------------------------------------------------- NCMEC


def test_ncmec_json_tolerates_key_case_and_string_booleans():
    doc = [{"ID": 5, "Classification": "a1",
            "Fingerprints": {"MD5": MD5[0].upper(), "PDQ": {"Value": PDQ[0], "Quality": "77"},
                             "PhotoDNA": PHOTODNA, "sha1": ""},
            "Deleted": "FALSE", "lastModified": "2026-01-02"},
           {"id": "6", "fingerprints": {"sha1": SHA1[0]}, "deleted": "true"}]
    recs = read_all(ncmec, BOM + json.dumps(doc).encode())
    assert [(r.signal_type, r.op, r.source_id) for r in recs] == [
        ("md5", "add", "5"), ("pdq", "add", "5"), ("photodna", "add", "5"),
        ("sha1", "remove", "6")]
    assert recs[0].labels.category == ("ncmec", "A1")
    assert recs[1].quality == 77
    assert recs[0].extra == {"lastModified": "2026-01-02"}


def test_ncmec_container_keeps_document_order_of_records_and_deletions():
    doc = {"Deletions": [{"id": "1", "fingerprints": {"md5": MD5[0]}}],
           "meta": {"generated": "x"},
           "records": [{"id": "1", "classification": "B2", "fingerprints": {"md5": MD5[0]}}]}
    recs = read_all(ncmec, json.dumps(doc, indent=2))
    assert [(r.op, r.value) for r in recs] == [("remove", MD5[0]), ("add", MD5[0])]


def test_ncmec_json_lines_bad_line_is_one_skipped_record():
    lines = [json.dumps({"id": "1", "fingerprints": {"md5": MD5[0]}}), "",
             '{"id": "2", "fingerprints": {"md5": ',
             json.dumps({"id": "3", "classification": "C3", "fingerprints": {"md5": MD5[2]}}),
             json.dumps({"id": "4", "deleted": True}),
             json.dumps({"id": "5", "fingerprints": {"md5": MD5[4]}})]
    recs, errors = collect(ncmec, "\n".join(lines) + "\n", "feed.jsonl")
    assert [r.source_id for r in recs] == ["1", "5"]
    assert [(e.location, e.field) for e in errors] == [
        ("line 3", None), ("line 4 (id 3)", "classification"), ("line 5 (id 4)", "fingerprints")]
    with pytest.raises(FormatError) as ei:
        read_all(ncmec, "\n".join(lines), "feed.jsonl")
    assert ei.value.location == "line 3" and "invalid JSON" in ei.value.reason


NCMEC_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<ns:Records xmlns:ns="urn:example">
  <ns:meta><count>3</count></ns:meta>
  <ns:Record ID="11">
    <ns:Classification>b1</ns:Classification>
    <ns:Fingerprints><ns:MD5>{MD5[0].upper()}</ns:MD5>
      <pdq quality="80">{PDQ[0]}</pdq></ns:Fingerprints>
    <Received>2026-01-01</Received>
  </ns:Record>
  <record><id>12</id><deleted>true</deleted><fingerprints><sha1>{SHA1[0]}</sha1></fingerprints></record>
  <deletion id="13"><fingerprints><md5>{MD5[1]}</md5></fingerprints></deletion>
</ns:Records>
"""


def test_ncmec_xml_with_namespaces_attributes_and_tombstones():
    recs = read_all(ncmec, BOM + NCMEC_XML.encode())
    assert [(r.signal_type, r.value, r.op, r.source_id) for r in recs] == [
        ("md5", MD5[0], "add", "11"), ("pdq", PDQ[0], "add", "11"),
        ("sha1", SHA1[0], "remove", "12"), ("md5", MD5[1], "remove", "13")]
    assert recs[0].labels.category == ("ncmec", "B1")
    assert recs[1].quality == 80
    assert recs[0].extra == {"Received": "2026-01-01"}


def test_ncmec_xml_errors():
    bad = NCMEC_XML.replace(MD5[0].upper(), BAD_MD5)
    recs, errors = collect(ncmec, bad, "feed.xml")
    assert [r.source_id for r in recs] == ["12", "13"]
    assert [(e.location, e.field) for e in errors] == [
        ("record 1 (line 4) (id 11)", "Fingerprints.MD5")]
    no_hash_in(errors[0], BAD_MD5)
    with pytest.raises(FormatError, match="invalid XML"):
        read_all(ncmec, NCMEC_XML.replace("</ns:Records>", ""))


def test_ncmec_xml_refuses_dtds_and_entities():
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<records><record id='1'><note>&b;</note></record></records>")
    with pytest.raises(FormatError, match="DTD"):
        read_all(ncmec, bomb)


def test_ncmec_writer_groups_by_source_id_and_writes_tombstones():
    recs = [EntryRecord("md5", MD5[0], Labels(category=("ncmec", "A2")), source_id="1"),
            EntryRecord("sha1", SHA1[0], Labels(category=("ncmec", "A2")), source_id="1"),
            EntryRecord("md5", MD5[1], op="remove", source_id="2")]
    buf = io.StringIO()
    assert ncmec.write(recs, buf) == 3
    doc = json.loads(buf.getvalue())
    assert doc == {"records": [
        {"id": "1", "classification": "A2", "fingerprints": {"md5": MD5[0], "sha1": SHA1[0]}},
        {"id": "2", "fingerprints": {"md5": MD5[1]}, "deleted": True}]}


# ----------------------------------------------------------------------------- StopNCII


def test_stopncii_statuses_case_numbers_and_signal_names():
    doc = {"hashes": [
        {"hashId": "h1", "signalType": "PDQ", "hashValue": PDQ[0], "hashStatus": "Active",
         "caseNumbers": ["C-1", 22]},
        {"HashID": "h2", "SignalType": "md5", "HashValue": MD5[0].upper(),
         "HashStatus": "received", "submittedAt": "2026-01-01"},
        {"hashId": "h3", "signalType": "SHA-256", "hashValue": SHA256[0],
         "hashStatus": "Withdrawn"},
        {"signalType": "sha1", "hashValue": SHA1[0], "hashStatus": "DELETED"},
    ]}
    recs = read_all(stopncii, json.dumps(doc))
    assert [(r.signal_type, r.op, r.source_id) for r in recs] == [
        ("pdq", "add", "h1"), ("md5", "add", "h2"), ("sha256", "remove", "h3"),
        ("sha1", "remove", None)]
    assert recs[0].labels.tags == ("case:22", "case:C-1")
    assert recs[1].extra == {"submittedAt": "2026-01-01", "hashStatus": "Received"}
    out = io.StringIO()
    stopncii.write(recs, out)
    written = json.loads(out.getvalue())
    assert [w["hashStatus"] for w in written] == ["Active", "Received", "Withdrawn", "Deleted"]
    assert written[0]["caseNumbers"] == ["22", "C-1"]
    assert "tags" not in written[0]


def test_stopncii_errors():
    doc = [{"hashId": "h1", "signalType": "PDQ", "hashValue": PDQ[0]},
           {"hashId": "h2", "signalType": "PDQ", "hashValue": PDQ[1][:60]},
           {"hashId": "h3", "signalType": "MD5", "hashValue": MD5[0], "hashStatus": "Pending"},
           {"hashId": "h4", "hashValue": MD5[1]},
           {"hashId": "h5", "signalType": "MD5", "hashValue": MD5[2], "caseNumbers": [{}]}]
    recs, errors = collect(stopncii, json.dumps(doc), "ncii.json")
    assert [r.source_id for r in recs] == ["h1"]
    assert [(e.location, e.field) for e in errors] == [
        ("record 2 (hashId h2)", "hashValue"), ("record 3 (hashId h3)", "hashStatus"),
        ("record 4 (hashId h4)", "signalType"), ("record 5 (hashId h5)", "caseNumbers")]
    no_hash_in(errors[0], PDQ[1][:60])
    with pytest.raises(FormatError) as ei:
        read_all(stopncii, json.dumps(doc), "ncii.json")
    assert str(ei.value).startswith("ncii.json: record 2 (hashId h2): hashValue: ")


# ----------------------------------------------------------------------------- PDQ list


def test_pdq_list_tolerates_comments_blanks_whitespace_bom_crlf():
    text = (f"# exported list\r\n\r\n  {PDQ[0].upper()} \r\n{PDQ[1]} , 90\r\n"
            f"\t{PDQ[2]},100\r\n")
    recs = read_all(pdqlist, BOM + text.encode())
    assert [(r.value, r.quality) for r in recs] == [(PDQ[0], None), (PDQ[1], 90), (PDQ[2], 100)]


def test_pdq_list_errors():
    text = f"{PDQ[0]},50\n{PDQ[1][:63]}\n{PDQ[2]},101\n{PDQ[3]},x\n{PDQ[4]}\n"
    recs, errors = collect(pdqlist, text, "list.pdq")
    assert [r.value for r in recs] == [PDQ[0], PDQ[4]]
    assert [(e.location, e.field) for e in errors] == [
        ("line 2", "pdq"), ("line 3", "quality"), ("line 4", "quality")]
    no_hash_in(errors[0], PDQ[1][:63])
    with pytest.raises(FormatError, match=r"list\.pdq: line 2: pdq: "):
        read_all(pdqlist, text, "list.pdq")


def test_pdq_list_writer():
    out = io.StringIO()
    pdqlist.write([EntryRecord("pdq", PDQ[0], quality=9), EntryRecord("pdq", PDQ[1])], out)
    assert out.getvalue() == f"{PDQ[0]},9\n{PDQ[1]}\n"
    with pytest.raises(ValueError, match="removal"):
        pdqlist.write([EntryRecord("pdq", PDQ[0], op="remove")], io.StringIO())
    with pytest.raises(ValueError, match="only pdq"):
        pdqlist.write([EntryRecord("md5", MD5[0])], io.StringIO())


# ------------------------------------------------------------------------------- common


def test_format_error_str_and_pickle():
    import pickle

    e = FormatError("f.json", "record 17 (MediaID 4411)", "MD5", "must be 32 hex characters")
    assert str(e) == "f.json: record 17 (MediaID 4411): MD5: must be 32 hex characters"
    assert str(FormatError("f", "line 2", None, "bad")) == "f: line 2: bad"
    assert isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.file, e2.location, e2.field, e2.reason) == (e.file, e.location, e.field, e.reason)


def test_missing_file_is_a_format_error(tmp_path):
    for name, module in FORMATS.items():
        with pytest.raises(FormatError, match="cannot open"):
            list(module.read(tmp_path / "missing"))
        assert name


def test_writers_leave_caller_files_open_and_accept_paths(tmp_path):
    for name, module in FORMATS.items():
        recs = [VIDEO] if name == "vpdq" else [EntryRecord("pdq", PDQ[0], source_id="1")]
        buf = io.BytesIO()
        module.write(recs, buf)
        assert not buf.closed and buf.getvalue(), name
        p = tmp_path / f"out.{name}"
        module.write(recs, p)
        assert [(r.signal_type, r.value) for r in module.read(p)] == [
            (r.signal_type, r.value) for r in recs], name


def _video() -> EntryRecord:
    from vigil.signals.vpdq import VpdqFrame, vpdq_digest, write_vpdq

    frames = [VpdqFrame(k, 100, PDQ[k % len(PDQ)], float(k)) for k in range(3)]
    return EntryRecord("vpdq", vpdq_digest(frames), extra={"vpdq": write_vpdq(frames)})


VIDEO = _video()


class ReadOnly:
    """Only read() and readline(), like a progress-counting wrapper around a file."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def readline(self, n: int = -1) -> bytes:
        return self._f.readline(n)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_readers_accept_any_object_with_read(name):
    recs = [EntryRecord("pdq", PDQ[0], Labels(category=("us", "1")), quality=5, source_id="3")]
    if name == "pdq-list":
        recs = [EntryRecord("pdq", PDQ[0], quality=5)]
    if name == "vpdq":
        recs = [VIDEO]
    buf = io.BytesIO()
    FORMATS[name].write(recs, buf)
    assert list(FORMATS[name].read(ReadOnly(BOM + buf.getvalue()))) == recs
