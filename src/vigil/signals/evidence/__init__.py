"""Evidence as items: files in folders, single files and archive members, never extracted.

Why this package exists: what an examiner extracts from seized devices is a mix of folders,
loose files and archives (zip, tar, tar.gz/bz2/xz, nested in one another, sometimes hidden
behind other content), much of it damaged and some of it hostile. Every command that
takes files (``vigil hash``, ``match``, ``bank add``, ``scan``) must see *every* file,
including the ones inside archives, without writing their content to disk (no stray
copies of abuse material, no path traversal, no disk filling up) and without letting one
bad file stop the run.

Public API:

* ``iter_items(inputs, limits)`` enumerates everything as :class:`Item` objects in a
  deterministic order. It never raises for bad evidence: problems become items whose
  ``error`` says what and where, and the enumeration goes on.
* ``open_item(virtual_path, limits)`` / ``read_item(virtual_path, limits)`` give the
  content of one item (a stream, or bytes). They need nothing but the virtual path, so
  workers in other processes (or on other machines that see the same paths) can read
  what the enumerating process listed.
* ``iter_archive_contents(virtual_path, limits)`` streams every item under one archive
  together with its bytes in one pass, for archives without random access (tar.gz).
* ``disk_path(virtual_path)`` turns the virtual path of a plain file back into an OS
  path; ``virtual_path(os_path)`` goes the other way.

Virtual paths
-------------

A plain file's virtual path is its path as given or walked (``evidence/DCIM/a.jpg``). A
member of an archive is written ``ARCHIVE!/MEMBER``, recursively::

    evidence/backup.tar.gz!/phone/chats.zip!/media/IMG_0001.jpg

Names are printable and unique, and the virtual path can be resolved on its own:

* bytes that are not valid UTF-8 are written ``\\xNN``; control characters and invisible
  format characters (e.g. right-to-left override, which hides ``gpj.exe``) are written
  ``\\xNN`` / ``\\uNNNN``; a literal backslash in a plain file's path is written ``\\\\``;
  a ``!`` that ends a folder name (and would read as ``!/``) is written ``\\x21``. So a
  path with nothing unusual is unchanged, and ``disk_path`` inverts the escaping exactly.
* Member names are *sanitised*, never used on the file system: ``/`` and ``\\`` both
  separate folders (Windows tools write backslashes), ``.`` and empty parts are dropped,
  ``..`` parts are dropped, an absolute name (``/etc/passwd``, ``C:\\x``) is made relative.
  The item keeps the stored name in ``Item.original`` and says what happened in
  ``Item.flags`` (``path-traversal``, ``absolute-name``, ``backslash-name``, ...). Such a
  member is still hashed: its content is evidence like any other.
* Two members that end up with the same name (duplicates are legal in zip and tar) are
  told apart by a suffix: ``a.jpg``, ``a.jpg~2``, ``a.jpg~3`` (flag ``duplicate-name``).
  Numbering follows the archive's own member order, so every process computes the same.
* A problem with an archive as a whole (corrupt, bomb, too deep, too many members) is an
  error item with the archive's path followed by ``!/`` and nothing else:
  ``evidence/broken.zip!/``. The archive file itself is still an ordinary item (it gets
  exact hashes like any file); members read before the damage are still yielded.

Archives are recognised by content (magic bytes), never by extension: a zip renamed
``.jpg`` is expanded. Formats: zip (also DOCX, XLSX, EPUB, APK... which are zips: images
embedded in documents are found), POSIX/GNU/pax tar, and tar compressed with gzip, bzip2
or xz. A compressed file that is not a tar is an ordinary file.

**Hidden archives.** A file on disk whose head is not an archive but which *ends* with a
zip (a zip appended to a JPEG, a self-extracting ``.exe`` behind its ``MZ`` stub) is
listed as what it is (it is hashed as itself: a JPEG still gets its PDQ) *and* as a zip:
its members follow it, and its item carries the flag ``embedded-archive``. Hidden zips
are looked for in files on disk, not inside archive members (that would mean
decompressing every member while listing).

Costs
-----

``iter_items`` reads the first bytes of every file (to sniff archives), the last 64 KiB
of every file that is not an archive by its head (where a hidden zip's directory would
end), the member table of each zip (random access: cheap), and the headers of each tar.
Nested archives are read into memory (bounded by ``Limits.max_nested_archive_size``)
because zip needs random access. Compressed tars have no random access: listing one
decompresses it completely, and each ``read_item`` of one of its members decompresses it
again up to that member (quadratic over the archive). Hand such an archive to one worker
and use ``iter_archive_contents`` (one pass), and enumerate with
``iter_items(..., expand_archives=False)`` so the listing itself does not decompress it.

Errors
------

Every problem is a :class:`SourceError` (a ``vigil.signals.errors.SignalError``) with a
stable ``code``: ``unreadable``, ``broken-link``, ``symlink-loop``, ``special-file``,
``too-deep``, ``too-large``, ``too-many-members``, ``archive-bomb``, ``corrupt-archive``,
``encrypted``, ``link-member``, ``unsupported``, ``not-found``.
"""

from vigil.signals.evidence.access import (
    iter_archive_contents,
    iter_items,
    open_item,
    read_item,
)
from vigil.signals.evidence.errors import (
    ArchiveBombError,
    BrokenLinkError,
    CorruptArchiveError,
    EncryptedMemberError,
    LinkMemberError,
    NotFoundError,
    SourceError,
    SpecialFileError,
    SymlinkLoopError,
    TooDeepError,
    TooLargeError,
    TooManyMembersError,
    UnreadableSourceError,
    UnsupportedMemberError,
)
from vigil.signals.evidence.items import Item, Limits
from vigil.signals.evidence.names import (
    FLAG_ABSOLUTE,
    FLAG_BACKSLASH,
    FLAG_DUPLICATE,
    FLAG_EMBEDDED,
    FLAG_ESCAPED,
    FLAG_NOT_UTF8,
    FLAG_SYMLINK,
    FLAG_TRAVERSAL,
    SEP,
    disk_path,
    virtual_path,
)
from vigil.signals.evidence.sniffing import sniff_archive

__all__ = [
    "FLAG_ABSOLUTE",
    "FLAG_BACKSLASH",
    "FLAG_DUPLICATE",
    "FLAG_EMBEDDED",
    "FLAG_ESCAPED",
    "FLAG_NOT_UTF8",
    "FLAG_SYMLINK",
    "FLAG_TRAVERSAL",
    "SEP",
    "ArchiveBombError",
    "BrokenLinkError",
    "CorruptArchiveError",
    "EncryptedMemberError",
    "Item",
    "Limits",
    "LinkMemberError",
    "NotFoundError",
    "SourceError",
    "SpecialFileError",
    "SymlinkLoopError",
    "TooDeepError",
    "TooLargeError",
    "TooManyMembersError",
    "UnreadableSourceError",
    "UnsupportedMemberError",
    "disk_path",
    "iter_archive_contents",
    "iter_items",
    "open_item",
    "read_item",
    "sniff_archive",
    "virtual_path",
]
