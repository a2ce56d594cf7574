"""The cross-lingual signal with the real USE multilingual model: a translation is found in order and
labelled with both languages; an independent text on the same topic is not."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.content import Content
from provenance.encoders import UseMultilingualEncoder
from provenance.passages import RunGate
from provenance.signals import BUILTIN
from provenance.signals.base import SignalSkipped
from provenance.signals.multilingual import XlingualSignal

SOURCE_EN = """A pipe is a one-way channel that lets one process pass data to another. Whatever the writer puts \
into the pipe comes out at the reader's end in the same order, and nothing is stored on disk. The kernel keeps \
a small buffer between the two ends.

When the buffer is full, a process that writes to the pipe is made to wait until the reader has taken some of \
the data out. When the buffer is empty, a process that reads from the pipe waits until new data arrives, unless \
the pipe was opened in non-blocking mode.

If every process that could write has closed its end, a reader sees the end of the file after it has consumed \
the remaining bytes. If every reader has closed its end, a writer receives a signal that by default ends the \
program.

Pipes have no names and exist only as long as some process holds one of their ends open. For two unrelated \
programs to talk this way, a named pipe in the file system can be used instead."""

TRANSLATION_DE = """Eine Pipe ist ein Kanal in eine Richtung, über den ein Prozess Daten an einen anderen \
weitergeben kann. Was der Schreibende in die Pipe gibt, kommt beim Lesenden in derselben Reihenfolge heraus, \
und nichts wird auf der Platte gespeichert. Der Kernel hält zwischen beiden Enden einen kleinen Puffer vor.

Ist der Puffer voll, muss ein Prozess, der in die Pipe schreibt, warten, bis der Lesende einen Teil der Daten \
entnommen hat. Ist der Puffer leer, wartet ein Prozess, der aus der Pipe liest, bis neue Daten eintreffen, es \
sei denn, die Pipe wurde im nicht blockierenden Modus geöffnet.

Haben alle Prozesse, die schreiben könnten, ihr Ende geschlossen, sieht ein Lesender das Dateiende, nachdem er \
die restlichen Bytes verbraucht hat. Haben alle Lesenden ihr Ende geschlossen, erhält ein Schreibender ein \
Signal, das standardmäßig das Programm beendet.

Pipes haben keine Namen und bestehen nur, solange ein Prozess eines ihrer Enden offen hält. Damit zwei nicht \
verwandte Programme auf diese Weise miteinander reden können, kann stattdessen eine benannte Pipe im \
Dateisystem verwendet werden."""

# Same topic, written independently, in German: what a same-topic draft looks like, not a copy.
INDEPENDENT_DE = """Sockets erlauben es Programmen, über ein Netzwerk oder auf demselben Rechner Nachrichten \
auszutauschen. Anders als bei einer Datei gibt es zwei Parteien: einen Server, der auf Verbindungen wartet, und \
Clients, die sich mit ihm verbinden.

Ein Stream-Socket liefert einen zuverlässigen Bytestrom, bei dem die Daten vollständig und geordnet ankommen. \
Ein Datagramm-Socket verschickt dagegen einzelne Pakete, die verloren gehen oder vertauscht werden können.

Für die Kommunikation zwischen Prozessen auf einem Rechner gibt es Unix-Domain-Sockets, die über einen Pfad im \
Dateisystem angesprochen werden und sogar Dateideskriptoren übertragen können. Geschlossen wird ein Socket mit \
close, wobei die Gegenseite dann das Ende der Verbindung bemerkt."""


@pytest.fixture(scope="session")
def signal() -> XlingualSignal:
    return XlingualSignal(UseMultilingualEncoder())


def text(s: str) -> Content:
    return Content(name="<text>", media="text", data=s.encode(), sha256="", text=s)


def test_identity_and_fingerprints(signal):
    assert signal.name == "text-xlingual" and XlingualSignal in BUILTIN
    assert signal.dim == 512 and signal.model_id().startswith("use-multilingual-v3:")
    fps = signal.fingerprint(text(SOURCE_EN))
    assert len(fps) >= 3
    for f in fps:
        assert f.value.shape == (512,) and f.value.dtype == np.float32
        assert abs(float(np.linalg.norm(f.value)) - 1.0) < 1e-5
        assert 0 <= f.start < f.end <= len(SOURCE_EN)
    with pytest.raises(SignalSkipped, match="no words to embed"):
        signal.fingerprint(text("   "))


def test_translation_is_found_in_order_with_both_languages(signal):
    src = signal.fingerprint(text(SOURCE_EN))
    draft = signal.fingerprint(text(TRANSLATION_DE))
    found = signal.verify(draft, src, TRANSLATION_DE, SOURCE_EN)
    assert found
    ev = found[0]
    assert all(e.relation == "translation" for e in found)
    assert (ev.relation, ev.draft_language, ev.source_language) == ("translation", "de", "en")
    assert ev.passages >= 2 and ev.score >= signal.gate.run_threshold
    # The runs cover most of both texts, each in order.
    assert sum(e.draft_span[1] - e.draft_span[0] for e in found) > 0.6 * len(TRANSLATION_DE)
    assert sum(e.source_span[1] - e.source_span[0] for e in found) > 0.6 * len(SOURCE_EN)
    d = ev.to_dict()
    assert d["relation"] == "translation" and d["draft"]["start"] == ev.draft_span[0]
    assert "translation en→de" in ev.render()


def test_translation_planted_in_other_text_is_located(signal):
    draft_text = INDEPENDENT_DE + "\n\n" + TRANSLATION_DE
    found = signal.verify(signal.fingerprint(text(draft_text)), signal.fingerprint(text(SOURCE_EN)),
                          draft_text, SOURCE_EN)
    assert found and all(e.relation == "translation" for e in found)
    planted = (len(INDEPENDENT_DE) + 2, len(draft_text))
    # Every run lies in the planted translation, and together they cover most of it.
    assert all(e.draft_span[0] >= planted[0] - 80 for e in found)
    inter = sum(min(e.draft_span[1], planted[1]) - max(e.draft_span[0], planted[0]) for e in found)
    assert inter > 0.6 * (planted[1] - planted[0])


def test_same_topic_independent_text_does_not_pass(signal):
    src = signal.fingerprint(text(SOURCE_EN))
    assert signal.verify(signal.fingerprint(text(INDEPENDENT_DE)), src, INDEPENDENT_DE, SOURCE_EN) == []


def test_same_language_runs_only_on_request(signal):
    fps = signal.fingerprint(text(SOURCE_EN))
    assert signal.verify(fps, fps, SOURCE_EN, SOURCE_EN) == []
    both = XlingualSignal(signal.encoder, same_language=True)
    (ev,) = both.verify(fps, fps, SOURCE_EN, SOURCE_EN)
    assert ev.relation == "paraphrase" and ev.draft_language == ev.source_language == "en"
    assert ev.passages == len(fps) and ev.score > 0.99


def test_gate_can_be_replaced():
    gate = RunGate(cell_threshold=0.9, run_threshold=0.95, single_threshold=0.99)
    s = XlingualSignal(UseMultilingualEncoder(), gate=gate)
    assert s.gate is gate  # verification reads its bars from the gate


def test_a_translated_copy_is_found_end_to_end(tmp_path) -> None:
    """Through the index: the German translation of an indexed English text is a paraphrase whose
    evidence says translation en -> de with spans on both sides; the same-topic German text is not."""
    from provenance import Index

    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        report = idx.check_text(TRANSLATION_DE)
        assert report.verdict == "paraphrase"
        ev = report.matches[0].evidence["text-xlingual"]
        assert ev["relation"] == "translation" and (ev["source_language"], ev["draft_language"]) == ("en", "de")
        assert ev["passed"] and ev["draft"]["end"] > ev["draft"]["start"]
        assert idx.check_text(INDEPENDENT_DE).verdict == "original"


# A language the guess did not know before (it was "und", so the search was skipped and nothing reported).
TRANSLATION_TR = """Boru, bir sürecin başka bir sürece veri aktarmasını sağlayan tek yönlü bir kanaldır. Yazanın \
boruya koyduğu her şey okuyanın ucundan aynı sırayla çıkar ve diskte hiçbir şey saklanmaz. Çekirdek iki uç \
arasında küçük bir arabellek tutar.

Arabellek dolduğunda, boruya yazan bir süreç, okuyan verinin bir kısmını alana kadar bekletilir. Arabellek boş \
olduğunda, borudan okuyan bir süreç, boru engellemesiz kipte açılmadıysa yeni veri gelene kadar bekler.

Yazabilecek her süreç kendi ucunu kapattıysa, okuyan kalan baytları tükettikten sonra dosyanın sonunu görür. Her \
okuyan kendi ucunu kapattıysa, yazan, varsayılan olarak programı sonlandıran bir sinyal alır.

Boruların adı yoktur ve yalnızca bir süreç uçlarından birini açık tuttuğu sürece var olurlar. İlgisiz iki \
programın bu şekilde konuşması için bunun yerine dosya sisteminde adlandırılmış bir boru kullanılabilir."""


def test_a_turkish_draft_is_searched(tmp_path) -> None:
    """Before Turkish had a profile its windows were undetermined, so with only English stored the search
    was skipped. (Whether this translation passes the run gate is the gate's business: its pairs reach
    0.62-0.71 with USE, a mean under the 0.675 chosen on German; bench/RESULTS.md, held-out languages.)"""
    from provenance import Index
    from provenance.signals.multilingual import window_languages
    from provenance.signals.text import passage_spans

    assert set(window_languages(TRANSLATION_TR, passage_spans(TRANSLATION_TR))) == {"tr"}
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        report = idx.check_text(TRANSLATION_TR)
        assert not any(s["signal"] == "text-xlingual" for s in report.skipped), report.skipped


# Chinese and Japanese write no spaces: before their characters were weighed as words, each of these was one
# passage, and a run of two could not form.
TRANSLATION_ZH = """管道是一个单向通道，让一个进程把数据传给另一个进程。\
写入者放进管道的任何内容都会以相同的顺序从读取者那一端出来，\
而且不会在磁盘上存储任何东西。内核在两端之间保留一个小缓冲区。

当缓冲区满时，向管道写入的进程必须等待，直到读取者取走一部分数据。当缓冲区为空时，从管道读取的进程会等待新数据到达，\
除非管道是以非阻塞模式打开的。

如果所有可能写入的进程都关闭了自己的一端，读取者在读完剩余字节后会看到文件结束。如果所有读取者都关闭了自己的一端，\
写入者会收到一个默认会结束程序的信号。

管道没有名字，只在某个进程保持其一端打开时存在。要让两个互不相关的程序以这种方式通信，可以改用文件系统中的命名管道。"""

INDEPENDENT_ZH = """套接字让程序可以通过网络或在同一台计算机上交换消息。与文件不同，这里有两方：一个等待连接的服务器，\
以及连接到它的客户端。

流式套接字提供可靠的字节流，数据完整且按顺序到达。数据报套接字则发送单独的数据包，这些数据包可能丢失或顺序颠倒。

对于同一台计算机上进程之间的通信，有 Unix 域套接字，它们通过文件系统中的路径访问，甚至可以传递文件描述符。\
套接字用 close 关闭，对方随后会注意到连接已结束。"""

TRANSLATION_JA = """パイプは、あるプロセスが別のプロセスにデータを渡すための一方向の通信路です。\
書き手がパイプに入れたものはすべて、\
同じ順序で読み手の側から出てきます。ディスクには何も保存されません。カーネルは両端の間に小さなバッファを保持します。

バッファがいっぱいになると、パイプに書き込むプロセスは、読み手がデータの一部を取り出すまで待たされます。バッファが空のときは、\
パイプから読み込むプロセスは、パイプが非ブロッキングモードで開かれていない限り、新しいデータが届くまで待ちます。

書き込む可能性のあるすべてのプロセスが自分の端を閉じると、読み手は残りのバイトを読み終えた後にファイルの終わりを見ます。\
すべての読み手が自分の端を閉じると、書き手はデフォルトでプログラムを終了させるシグナルを受け取ります。

パイプには名前がなく、いずれかのプロセスが端のひとつを開いている間だけ存在します。無関係な二つのプログラムがこの方法で通信するには、\
代わりにファイルシステム上の名前付きパイプを使うことができます。"""


@pytest.mark.parametrize(("draft", "lang"), [(TRANSLATION_ZH, "zh"), (TRANSLATION_JA, "ja")])
def test_chinese_and_japanese_translations_are_found(tmp_path, draft: str, lang: str) -> None:
    from provenance import Index
    from provenance.signals.text import passage_spans

    assert len(passage_spans(draft)) >= 4
    with Index.open(tmp_path / "idx", create=True) as idx:
        idx.add([SOURCE_EN], source="docs")
        report = idx.check_text(draft)
        assert report.verdict == "paraphrase"
        ev = report.matches[0].evidence["text-xlingual"]
        assert ev["relation"] == "translation" and (ev["source_language"], ev["draft_language"]) == ("en", lang)
        assert ev["passages"] >= 2
        assert idx.check_text(INDEPENDENT_ZH).verdict == "original"
