// The English/中文 language switch shown in page headers.
import { h } from './dom';
import { lang, setLang, t, type Lang } from './i18n';

export function langSwitch(onChange: () => void): HTMLElement {
  const options: [Lang, string][] = [
    ['en', 'English'],
    ['zh', '中文'],
  ];
  return h(
    'div',
    { class: 'lang-switch', role: 'group', 'aria-label': t('language') },
    options.map(([code, label]) =>
      h(
        'button',
        {
          type: 'button',
          lang: code === 'zh' ? 'zh-CN' : 'en',
          'aria-pressed': String(lang() === code),
          onclick: () => {
            if (lang() === code) return;
            setLang(code);
            onChange();
          },
        },
        label,
      ),
    ),
  );
}
