// Opening a model folder and tokenizing a text for the explorer. Opening maps the weights and
// parses tokenizer.json (a second for a 128K vocabulary), so it runs on the worker; tokenizing is
// fast enough for the UI thread at the lengths a forward on a CPU allows.
#include "model_text.hpp"

#include <QCryptographicHash>
#include <QDir>
#include <QFileInfo>
#include <QObject>

#include "attnscope/error.hpp"

namespace attnscope::gui {
namespace {
QString qs(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

QString count(double n) {
  if (n >= 1e9) return QStringLiteral("%1 B").arg(n / 1e9, 0, 'f', 1);
  if (n >= 1e6) return QStringLiteral("%1 M").arg(n / 1e6, 0, 'f', 0);
  if (n >= 1e3) return QStringLiteral("%1 K").arg(n / 1e3, 0, 'f', 0);
  return QString::number(qint64(n));
}
}  // namespace

QString LoadedModel::summary() const {
  const ModelConfig& c = model.config();
  const Checkpoint& ck = model.checkpoint();
  double params = 0;
  QStringList types;
  for (const std::string& name : ck.names()) {
    params += double(shape_numel(ck.shape(name)));
    const StoredType t = ck.stored_type(name);
    const QString type = t == StoredType::f32   ? QStringLiteral("F32")
                         : t == StoredType::f16 ? QStringLiteral("F16")
                                                : QStringLiteral("BF16");
    if (!types.contains(type)) types << type;
  }
  QString heads = QObject::tr("%1 heads").arg(c.heads);
  if (c.kv_heads != c.heads) heads += QObject::tr(" (%1 kv)").arg(c.kv_heads);
  QString line = QObject::tr("%1 · %2 layers · d %3 · %4 × %5 · %6 params · %7 · context %8")
                     .arg(qs(family_name(c.family)))
                     .arg(c.layers)
                     .arg(c.hidden_size)
                     .arg(heads)
                     .arg(c.head_dim)
                     .arg(count(params), types.join(QLatin1Char('/')))
                     .arg(c.max_positions);
  if (c.window) line += QObject::tr(" · window %1").arg(*c.window);
  return line;
}

std::shared_ptr<const LoadedModel> LoadedModel::open(const QString& dir) {
  const QFileInfo info(dir);
  if (!info.exists()) {
    throw Error(QObject::tr("'%1' does not exist").arg(dir).toStdString());
  }
  if (!info.isDir()) {
    throw Error(QObject::tr("'%1' is a file; open the model's folder (the one holding "
                            "config.json)")
                    .arg(dir)
                    .toStdString());
  }
  auto m = std::make_shared<LoadedModel>();
  m->dir = info.absoluteFilePath();
  m->name = QDir(m->dir).dirName();
  m->model = Model::load(QDir::toNativeSeparators(m->dir).toStdString());
  if (!m->model.has_tokenizer()) {
    throw Error(QObject::tr("'%1' has no tokenizer.json: the explorer needs it to turn your "
                            "text into tokens")
                    .arg(m->dir)
                    .toStdString());
  }
  return m;
}

std::shared_ptr<const ModelText> ModelText::make(const LoadedModel& model, const QString& text) {
  if (text.trimmed().isEmpty()) throw Error(QObject::tr("the text is empty").toStdString());
  auto t = std::make_shared<ModelText>();
  t->text = text;
  const QByteArray utf8 = text.toUtf8();
  // A token is rarely more than 16 bytes: a text far beyond what the model can read is refused
  // before the tokenizer spends seconds on it.
  const qint64 limit = std::min<qint64>(qint64(1) << 20, 16 * model.contextLength());
  if (utf8.size() > limit) {
    throw Error(QObject::tr("the text is %1 KiB; %2 reads %3 tokens, about %4 KiB of text at "
                            "most: shorten it")
                    .arg(utf8.size() >> 10)
                    .arg(model.name)
                    .arg(model.contextLength())
                    .arg(limit >> 10)
                    .toStdString());
  }
  t->sha256 =
      QString::fromLatin1(QCryptographicHash::hash(utf8, QCryptographicHash::Sha256).toHex());
  const Tokenizer& tokenizer = model.model.tokenizer();
  t->ids = tokenizer.encode(std::string_view(utf8.constData(), size_t(utf8.size())));
  if (t->ids.empty()) throw Error(QObject::tr("the text has no tokens").toStdString());
  model.model.check_ids(t->ids);
  auto tokens = std::make_shared<QStringList>();
  tokens->reserve(qsizetype(t->ids.size()));
  for (int32_t id : t->ids) tokens->append(QString::fromStdString(tokenizer.token_display(id)));
  t->tokens = std::move(tokens);
  return t;
}

}  // namespace attnscope::gui
