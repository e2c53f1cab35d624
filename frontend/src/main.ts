// Entry point: loads the styles, applies the saved language and renders the current route.
import './styles.css';
import { applyLang } from './i18n';
import { render } from './router';

applyLang();
void render();
